/**
 * @module controller/ui/page
 * The dashboard's HTML shell and style sheet, served as is. The page holds no data: the script
 * (`ui/app-js`) signs in, then builds every view from the `/v1` API with DOM text nodes only.
 */
export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Chokepoint controller</title>
<link rel="stylesheet" href="/ui/style.css">
<script type="module" src="/ui/app.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header>
  <h1>Chokepoint</h1>
  <nav aria-label="Pages" id="nav" hidden>
    <ul>
      <li><a href="#overview">Overview</a></li>
      <li><a href="#registry">Registry</a></li>
      <li><a href="#versions">Versions</a></li>
      <li><a href="#rollouts">Rollouts</a></li>
      <li><a href="#nodes">Nodes</a></li>
      <li><a href="#audit">Audit log</a></li>
      <li><a href="#takedowns">Takedowns</a></li>
      <li><a href="#probe">Probe results</a></li>
    </ul>
  </nav>
  <p id="me" aria-live="polite"></p>
</header>
<main id="main" tabindex="-1">
  <section id="signin" aria-labelledby="signin-h" hidden>
    <h2 id="signin-h">Sign in</h2>
    <form id="signin-form">
      <label for="token">API token</label>
      <input id="token" name="token" type="password" autocomplete="off" required>
      <button type="submit">Sign in</button>
    </form>
    <p id="signin-error" role="alert"></p>
  </section>
  <div id="view"></div>
</main>
<p id="status" role="status" aria-live="polite"></p>
</body>
</html>
`;

export const STYLE_CSS = `
:root { font-family: system-ui, sans-serif; color: #1b1b1b; background: #fafafa; }
body { margin: 0; }
header { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; padding: .5rem 1rem; background: #17324d; color: #fff; }
header h1 { font-size: 1.2rem; margin: 0; }
header a { color: #fff; }
nav ul { display: flex; flex-wrap: wrap; gap: .8rem; list-style: none; margin: 0; padding: 0; }
nav a[aria-current="page"] { font-weight: bold; text-decoration: underline 3px; }
main { padding: 1rem; max-width: 80rem; }
.skip { position: absolute; left: -999px; } .skip:focus { left: .5rem; top: .5rem; background: #fff; color: #000; padding: .3rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #bbb; padding: .25rem .5rem; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
:focus-visible { outline: 3px solid #e08a00; outline-offset: 2px; }
.ok::before { content: "✔ "; } .ok { color: #14622b; }
.bad::before { content: "✖ "; } .bad { color: #a4161a; font-weight: bold; }
.warn::before { content: "⚠ "; } .warn { color: #7a4b00; }
form.inline, div.inline { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; margin: .5rem 0; }
form.inline label, div.inline label { display: flex; flex-direction: column; font-size: .9rem; }
button { padding: .3rem .8rem; }
pre { background: #eee; padding: .5rem; overflow: auto; max-height: 30rem; }
svg text { font-size: 11px; fill: #1b1b1b; }
#status { padding: 0 1rem; }
`;
