// seedtab's embeddable player, the one script a site pastes:
//   <script src="https://SEEDTAB/widget.js"></script>
//   <seedtab-player magnet="magnet:?xt=..." file="movie.mp4" autoplay muted></seedtab-player>
// (or torrent="https://.../x.torrent" instead of magnet; storage="auto" to keep pieces in
// browser storage rather than memory, for big files). The element shows an iframe of
// SEEDTAB/embed.html — the player runs on seedtab's origin, where its service worker and
// storage live — and re-dispatches what the player posts as DOM CustomEvents on the element:
// 'ready', 'progress', 'peers', 'playing', 'pause', 'ended', 'error' (event.detail holds the
// message). Only messages from its own iframe and from the script's origin are believed.
// Plain script, no imports: copied into www/dist as it is (webpack.config.js).
(function () {
  'use strict';
  if (!window.customElements || window.customElements.get('seedtab-player')) return;
  // Where the player lives: the origin this very script came from.
  var script = document.currentScript;
  var ORIGIN = new URL(script && script.src ? script.src : 'widget.js', location.href).origin;
  var ATTRS = ['magnet', 'torrent', 'file', 'autoplay', 'muted', 'storage'];
  var players = new Set();

  window.addEventListener('message', function (event) {
    if (event.origin !== ORIGIN) return;
    var data = event.data;
    if (!data || typeof data !== 'object' || data.source !== 'seedtab' || typeof data.type !== 'string') return;
    players.forEach(function (player) {
      if (player._frame && event.source === player._frame.contentWindow) {
        player.dispatchEvent(new CustomEvent(data.type, { detail: data }));
      }
    });
  });

  class SeedtabPlayer extends HTMLElement {
    static get observedAttributes() { return ATTRS; }

    constructor() {
      super();
      var root = this.attachShadow({ mode: 'open' });
      var style = document.createElement('style');
      style.textContent = ':host{display:block;position:relative;width:100%;max-width:100%;aspect-ratio:16/9;background:#000}'
        + 'iframe{position:absolute;inset:0;width:100%;height:100%;border:0}';
      root.appendChild(style);
      this._frame = null;
    }

    connectedCallback() {
      players.add(this);
      this._render();
    }

    disconnectedCallback() {
      players.delete(this);
      if (this._frame) this._frame.remove();
      this._frame = null;
    }

    attributeChangedCallback() {
      if (this.isConnected) this._render();
    }

    /** The player's URL: every option in the hash, so none of it is ever sent to a server. */
    get src() {
      var parts = [];
      var magnet = this.getAttribute('magnet');
      var torrent = this.getAttribute('torrent');
      if (magnet) parts.push('magnet=' + encodeURIComponent(magnet));
      else if (torrent) parts.push('torrent=' + encodeURIComponent(new URL(torrent, location.href).href));
      var file = this.getAttribute('file');
      if (file) parts.push('file=' + encodeURIComponent(file));
      if (this.hasAttribute('autoplay')) parts.push('autoplay');
      if (this.hasAttribute('muted')) parts.push('muted');
      // storage="auto": pieces go to browser storage on seedtab's origin (big files); else memory.
      if (this.getAttribute('storage') === 'auto') parts.push('storage=auto');
      return ORIGIN + '/embed.html#' + parts.join('&');
    }

    _render() {
      var src = this.src;
      if (this._frame && this._frame.src === src) return;
      if (this._frame) this._frame.remove();
      var frame = document.createElement('iframe');
      frame.setAttribute('allow', 'autoplay; fullscreen; picture-in-picture');
      frame.setAttribute('title', this.getAttribute('title') || 'seedtab player');
      frame.src = src;
      this._frame = frame;
      this.shadowRoot.appendChild(frame);
    }
  }

  window.customElements.define('seedtab-player', SeedtabPlayer);
}());
