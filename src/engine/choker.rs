//! Who we upload to. Regular slots go to the interested peers that give us the most (tit-for-tat
//! while downloading) or, once we are a seed, rotate so every downloader gets a turn; one
//! optimistic slot goes to a random choked peer and moves every few rounds, so newcomers and
//! better partners get discovered. Pure decisions over a list of candidates: never sends anything.

use crate::rng::Rng;

use super::PeerKey;

#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub key: PeerKey,
    /// Bytes/s it sends us (downloading) or we send it (seeding).
    pub rate: f64,
    pub snubbed: bool,
    pub unchoked: bool,
    /// When we last unchoked it (for seed-mode rotation); 0 if never.
    pub unchoked_since_ms: u64,
    /// Newly connected peers get a better chance at the optimistic slot.
    pub new: bool,
}

/// Regular slots: the chosen keys, best first.
pub(crate) fn regular(cands: &[Candidate], slots: usize, seeding: bool) -> Vec<PeerKey> {
    let mut ranked: Vec<&Candidate> = cands.iter().filter(|c| !c.snubbed).collect();
    if seeding {
        // Rotation: whoever has waited longest goes first; those unchoked for a while yield.
        ranked.sort_by(|a, b| {
            let wait = |c: &Candidate| if c.unchoked { c.unchoked_since_ms } else { 0 };
            wait(a).cmp(&wait(b)).then(a.key.cmp(&b.key))
        });
    } else {
        ranked.sort_by(|a, b| b.rate.total_cmp(&a.rate).then(a.key.cmp(&b.key)));
    }
    ranked.into_iter().take(slots).map(|c| c.key).collect()
}

/// The optimistic slot: a random interested peer not among `regular`, newcomers weighted 3×.
pub(crate) fn optimistic(
    cands: &[Candidate],
    regular: &[PeerKey],
    rng: &mut Rng,
) -> Option<PeerKey> {
    let pool: Vec<&Candidate> = cands.iter().filter(|c| !regular.contains(&c.key)).collect();
    let total: u64 = pool.iter().map(|c| if c.new { 3 } else { 1 }).sum();
    if total == 0 {
        return None;
    }
    let mut pick = rng.below(total);
    for c in pool {
        let w = if c.new { 3 } else { 1 };
        if pick < w {
            return Some(c.key);
        }
        pick -= w;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(key: PeerKey, rate: f64) -> Candidate {
        Candidate {
            key,
            rate,
            snubbed: false,
            unchoked: false,
            unchoked_since_ms: 0,
            new: false,
        }
    }

    #[test]
    fn downloading_prefers_fastest_and_skips_snubbed() {
        let mut c = vec![cand(1, 10.0), cand(2, 30.0), cand(3, 20.0), cand(4, 99.0)];
        c[3].snubbed = true;
        assert_eq!(regular(&c, 2, false), vec![2, 3]);
    }

    #[test]
    fn seeding_rotates_longest_unchoked_out() {
        let mut c = vec![cand(1, 0.0), cand(2, 0.0), cand(3, 0.0)];
        c[0].unchoked = true;
        c[0].unchoked_since_ms = 5_000;
        c[1].unchoked = true;
        c[1].unchoked_since_ms = 1_000;
        // 3 never had a turn, then 2 (unchoked earliest), and 1 waits.
        assert_eq!(regular(&c, 2, true), vec![3, 2]);
    }

    #[test]
    fn optimistic_picks_outside_regular() {
        let c = vec![cand(1, 0.0), cand(2, 0.0), cand(3, 0.0)];
        let mut rng = Rng::new(1);
        for _ in 0..50 {
            let o = optimistic(&c, &[1, 2], &mut rng);
            assert_eq!(o, Some(3));
        }
        assert_eq!(optimistic(&c, &[1, 2, 3], &mut rng), None);
    }
}
