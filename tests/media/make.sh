#!/usr/bin/env bash
# Makes the tiny media files the player test streams (tests/browser/player.test.mjs). They are
# committed: CI has no ffmpeg, and nothing installs it (scripts/setup.sh does not). Run by hand,
# on a machine with Debian's ffmpeg (`apt-get install -y ffmpeg`; these were made with
# ffmpeg 5.1 of Debian 12), only to make them again:
#   bash tests/media/make.sh
# Both: 10 s of ffmpeg's testsrc2 pattern (a moving picture with a frame counter) at 320x180,
# 24 fps, a keyframe every second (so a seek can start near any second), with a 440 Hz tone.
#   clip.mp4  H.264 (baseline) + AAC, moov atom first (+faststart: playable before the end)
#   clip.webm VP9 + Opus
set -euo pipefail
cd "$(dirname "$0")"
src=(-f lavfi -i "testsrc2=size=320x180:rate=24:duration=10"
     -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=10")
ffmpeg -hide_banner -loglevel error -y "${src[@]}" \
  -c:v libx264 -profile:v baseline -pix_fmt yuv420p -b:v 300k -g 24 -keyint_min 24 \
  -c:a aac -b:a 48k -ac 1 -shortest -movflags +faststart -map_metadata -1 -fflags +bitexact \
  clip.mp4
ffmpeg -hide_banner -loglevel error -y "${src[@]}" \
  -c:v libvpx-vp9 -pix_fmt yuv420p -b:v 300k -g 24 -keyint_min 24 -deadline good -cpu-used 4 \
  -c:a libopus -b:a 48k -ac 1 -shortest -map_metadata -1 -fflags +bitexact \
  clip.webm
ls -l clip.mp4 clip.webm
