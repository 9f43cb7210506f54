/// The dashboard's style sheet and its one script, served from `/static/`: no inline style or
/// script, so that `Content-Security-Policy: default-src 'self'` holds.
enum WebAssets {
    static let css = """
        body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d232b; background: #f7f8fa; }
        nav { display: flex; gap: 1.2em; align-items: center; padding: .6em 1.4em; background: #1d232b; }
        nav a, nav .who { color: #e8ecf1; text-decoration: none; } nav .who { margin-left: auto; opacity: .8; }
        main { padding: 1em 1.6em 3em; max-width: 80em; }
        h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; } h3 { font-size: 1em; }
        table { border-collapse: collapse; width: 100%; background: #fff; } th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid #e3e7ec; vertical-align: top; }
        code, pre { font-family: ui-monospace, monospace; } pre { background: #111820; color: #dfe6ee; padding: 1em; overflow: auto; max-height: 40em; white-space: pre-wrap; }
        .cards { display: flex; gap: 1em; flex-wrap: wrap; } .card { background: #fff; border: 1px solid #e3e7ec; padding: .8em 1.2em; border-radius: 6px; }
        .card b { display: block; font-size: 1.6em; } .card.bad b { color: #b3261e; }
        .state-succeeded { color: #1b7f3b; } .state-failed, .state-timed_out { color: #b3261e; } .state-running, .state-queued { color: #8a5a00; }
        .state-skipped, .state-missed, .state-cancelled { color: #6b7280; }
        form.inline { display: inline; } .actions form { margin-right: .4em; } button { cursor: pointer; }
        .hint { color: #6b7280; } .error { color: #b3261e; } mark { background: #ffe9a8; padding: 0 .3em; }
        svg.chart { width: 100%; max-width: 600px; height: 120px; background: #fff; border: 1px solid #e3e7ec; }
        rect.bar { fill: #4b7bd6; } rect.bar.state-failed, rect.bar.state-timed_out { fill: #d6544b; }
        .login { margin: 2em 0; display: flex; gap: .6em; } dl { display: grid; grid-template-columns: 10em 1fr; } dd { margin: 0; }
        ol.timeline, ul.states { padding-left: 1.2em; } time { font-variant-numeric: tabular-nums; margin-right: .6em; }
        """

    /// Follows a running attempt's log: fetches it every second until the run ends. The text is
    /// set as text, never as markup.
    static let followScript = """
        (function () {
          var log = document.getElementById('log');
          if (!log || log.getAttribute('data-follow') !== 'yes') { return; }
          function poll() {
            fetch(log.getAttribute('data-src'), { credentials: 'same-origin' }).then(function (response) {
              var state = response.headers.get('X-Run-State');
              return response.text().then(function (text) {
                log.textContent = text;
                log.scrollTop = log.scrollHeight;
                if (state === 'queued' || state === 'running') { setTimeout(poll, 1000); }
                else { log.setAttribute('data-follow', 'done'); }
              });
            }).catch(function () { setTimeout(poll, 2000); });
          }
          poll();
        })();
        """
}
