import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { NatsConnection } from "@nats-io/nats-core";
import { decodeEvent, type EventType, type TroupeEvent } from "@troupe/events";
import { createLogger, parseOptions } from "@troupe/events/node";
import { waitFor, type TestNats } from "@troupe/tests/harness";
import { resolveConfig, workerOptions } from "../src/config.ts";
import { startWorker, type Worker } from "../src/worker.ts";

/** Local pages the scenarios run against, on 127.0.0.1 and a free port. */
export const PAGES: Record<string, string> = {
  // A box shown 2 s after load (after any settle of the step before), and one never shown.
  "/shown-later": `<!doctype html><title>shown later</title><div id="box" style="display:none;width:120px;height:40px;background:#c00">box</div><div id="never" style="display:none">never</div>
<script>addEventListener("load", () => setTimeout(() => { document.getElementById("box").style.display = "block"; }, 2000));</script>`,
  "/huge-text": `<!doctype html><title>huge</title><p id="huge">${"x".repeat(5_000_000)}</p>${'<li class="row">'.concat("y".repeat(1000), "</li>").repeat(1000)}`,
  // Sends itself away 400 ms after loading: during the step after the navigate (a wait of 1 s), not the navigate's own settling.
  "/self-nav": `<!doctype html><title>self-nav</title><h1 id="h">leaving</h1><script>setTimeout(() => { location.href = "http://169.254.169.254/latest/meta-data/"; }, 400);</script>`,
  // Pages that go to another document: on a click, at once after loading (a meta refresh, a load handler).
  "/link-fast": `<!doctype html><title>first</title><h1 id="h">first page</h1><a id="go" href="/fast">go</a>`,
  "/fast": `<!doctype html><title>fast</title><h1 id="h">second page</h1>`,
  "/meta-refresh": `<!doctype html><title>refresh</title><meta http-equiv="refresh" content="0;url=/form"><h1 id="heading">on the way</h1>`,
  "/js-redirect-load": `<!doctype html><title>redirect</title><h1 id="heading">on the way</h1><script>addEventListener("load", () => location.replace("/form"));</script>`,
  // A frame of the same site with a link in it, and one added half a second after the load (as payment and ad frames are).
  "/frame-link": `<!doctype html><title>frame link</title><iframe src="/link-fast"></iframe>`,
  "/later-frame": `<!doctype html><title>later frame</title><script>addEventListener("load", () => setTimeout(() => { const f = document.createElement("iframe"); f.src = "/link-fast"; document.body.append(f); }, 1500));</script>`,
  "/late-frame": `<!doctype html><title>late frame</title><script>addEventListener("load", () => setTimeout(() => { const f = document.createElement("iframe"); f.src = "/link-fast"; document.body.append(f); }, 500));</script>`,
  "/typing": `<!doctype html><title>typing</title><input id="a" oninput="document.getElementById('va').textContent = this.value"><p id="va"></p><input id="b" oninput="document.getElementById('vb').textContent = this.value"><p id="vb"></p>`,
  // Fields a type step must not report as typed into: a hidden first match, disabled, read-only, a wrapper, one enabled late.
  "/fields": `<!doctype html><title>fields</title>
<input class="q" style="display:none"><input class="q" id="shown" oninput="document.getElementById('v-shown').textContent = this.value"><p id="v-shown"></p>
<input id="off" disabled><fieldset disabled><input id="in-fieldset"></fieldset><input id="ro" readonly value="keep">
<div class="search" id="wrap"><input id="inner"></div>
<input id="late" disabled oninput="document.getElementById('v-late').textContent = this.value"><p id="v-late"></p>
<input id="swap"><p id="v-swap"></p>
<script>addEventListener("load", () => setTimeout(() => { document.getElementById("late").disabled = false; }, 800));
document.getElementById("swap").addEventListener("input", function once() { this.removeEventListener("input", once); const n = document.createElement("input"); n.id = "swap"; this.replaceWith(n); });</script>`,
  // What a waitForElement with visible: false waits for: a spinner removed after the load, a hidden element, one that stays.
  "/spinner": `<!doctype html><title>spinner</title><div id="spin">loading</div><p id="state">loading</p><div id="hidden" style="display:none">h</div><div id="stays">here</div>
<ul><li class="item">1</li><li class="item">2</li><li class="item">3</li></ul>
<script>addEventListener("load", () => setTimeout(() => { document.getElementById("spin").remove(); document.getElementById("state").textContent = "loaded"; }, 300));</script>`,
  // A 2000×10 table of one-character cells, and 3000 hidden fields before the one a type step can use.
  "/big-table": `<!doctype html><title>big table</title><input class="f" id="f" oninput="document.getElementById('v-f').textContent = this.value"><p id="v-f"></p><table id="t"></table><script>
const t = document.getElementById("t"); let rows = ""; for (let r = 0; r < 2000; r++) rows += "<tr>" + "<td>x</td>".repeat(10) + "</tr>"; t.innerHTML = rows;
const f = document.getElementById("f"); for (let i = 0; i < 3000; i++) { const h = document.createElement("input"); h.className = "f"; h.style.display = "none"; f.before(h); }</script>`,
  // Lists with empty items: text that is blank once collapsed, links without the attribute extracted.
  "/sparse": `<!doctype html><title>sparse</title><p class="e"></p><p class="e">  </p><p class="e">x</p><a class="l">no link</a><a class="l" href="/h">h</a>`,
  // A hidden select before the visible one: the select step must choose in the one it waited for.
  "/two-selects": `<!doctype html><title>selects</title><select class="s" id="hidden" style="display:none"><option value="a">a</option><option value="b">b</option></select>
<select class="s" id="shown" onchange="document.getElementById('v-s').textContent = this.value"><option value="a">a</option><option value="b">b</option></select><p id="v-s"></p>`,
  // A type step's last key moves on: an Enter that sends a POST form, a code field that moves the focus to the next one when full.
  "/type-post": `<!doctype html><title>post</title><form method="post" action="/posted"><input id="q" name="q"></form>`,
  // A page that leaves on its own 300 ms after the first key typed into it (a timed redirect: nothing typed asks for it).
  "/leaves-soon": `<!doctype html><title>leaves</title><input id="q" oninput="if (!window.going) { window.going = true; setTimeout(() => { location.href = '/form'; }, 300); }">`,
  "/otp": `<!doctype html><title>otp</title><input id="code" maxlength="4" oninput="document.getElementById('v-code').textContent = this.value; if (this.value.length === 4) document.getElementById('next').focus()"><input id="next"><p id="v-code"></p>`,
  // Pages that never finish parsing (a script that never comes) or replace the timers the worker would use.
  "/slowscript": `<!doctype html><title>slow</title><h1 id="h">slow page</h1><button id="b" onclick="this.textContent='clicked'">b</button><script src="/hang"></script>`,
  // Replaces setTimeout with one that never calls back and says it is still loading, for ever; #used lists each call of either.
  "/notimer": `<!doctype html><title>no timer</title><input id="i"><p id="used"></p><script>
const used = (what) => { document.getElementById("used").textContent += what + " "; };
window.setTimeout = () => { used("setTimeout"); return 0; };
Object.defineProperty(document, "readyState", { get: () => { used("readyState"); return "loading"; } });
</script>`,
  // Buttons a click must not report as clicked when it lands elsewhere: under a banner that stays, under a loading
  // overlay that goes 700 ms after the load, with pointer-events: none; a checkbox drawn over by its own label, an icon by a badge of the same button.
  "/covered": `<!doctype html><title>covered</title><style>.b{position:absolute;left:20px;width:200px;height:40px}</style>
<button class="b" id="banner-under" style="top:20px" onclick="this.dataset.clicked='yes'">under a banner</button>
<div id="cookie-banner" class="consent" style="position:absolute;left:0;top:0;width:400px;height:80px;background:#eee;z-index:5">cookies?</div>
<button class="b" id="spin-under" style="top:120px" onclick="document.getElementById('state').textContent='clicked'">under a spinner</button>
<div id="spinner" style="position:absolute;left:0;top:100px;width:400px;height:80px;z-index:5"></div>
<button class="b" id="ghost" style="top:220px;pointer-events:none" onclick="this.dataset.clicked='yes'">pointer-events none</button>
<label for="cb" style="position:absolute;left:20px;top:300px;width:200px;height:30px"><input id="cb" type="checkbox" style="position:absolute;left:0;top:0;margin:0">
<span style="position:absolute;left:0;top:0;width:30px;height:30px;background:#09c"></span> agree</label>
<button class="b" id="wrapped" style="top:360px" onclick="document.getElementById('state2').textContent='button'"><span id="icon" style="position:absolute;left:5px;top:5px;width:20px;height:20px">*</span><span class="badge" style="position:absolute;left:0;top:0;width:40px;height:40px;z-index:2"></span> text</button>
<button class="b" id="form-under" style="top:520px">under a form</button>
<form id="newsletter" class="signup box" style="position:absolute;left:0;top:500px;width:400px;height:80px;z-index:5;background:#fff"><input name="id" style="width:20px"><input name="tagName" style="width:20px"></form>
<button class="b" id="free" style="top:620px" onclick="document.getElementById('state3').textContent='free'">free</button>
<p id="state" style="position:absolute;top:420px">waiting</p><p id="state2" style="position:absolute;top:460px">-</p><p id="state3" style="position:absolute;top:680px">-</p>
<script>addEventListener("load", () => setTimeout(() => document.getElementById("spinner").remove(), 700));</script>`,
  // Gathers WebRTC candidates with a STUN server on the test's UDP port (?port=): the addresses it found, once done.
  "/webrtc": `<!doctype html><title>webrtc</title><pre id="out"></pre><script>
const pc = new RTCPeerConnection({ iceServers: [{ urls: "stun:127.0.0.1:" + new URLSearchParams(location.search).get("port") }] });
const seen = [];
pc.onicecandidate = (e) => { if (e.candidate && e.candidate.candidate) seen.push(e.candidate.candidate.split(" ").slice(4, 8).join(" ")); };
pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === "complete") { const o = document.getElementById("out"); o.textContent = JSON.stringify(seen); o.className = "done"; } };
pc.createDataChannel("x");
pc.createOffer().then((o) => pc.setLocalDescription(o));
</script>`,
  // Asks Chromium to prerender the page one link leads to and prefetch another's (speculation rules): activating the
  // prerendered page swapped Puppeteer's page session; a prefetched one made its waitForNavigation time out.
  "/prerender": `<!doctype html><title>prerender</title><script type="speculationrules">{"prerender":[{"source":"list","urls":["/prerendered"]}],"prefetch":[{"source":"list","urls":["/prefetched"]}]}</script>
<a id="go" href="/prerendered">go</a> <a id="pf" href="/prefetched">prefetched</a>`,
  "/prefetched": `<!doctype html><title>prefetched</title><h1 id="h">prefetched page</h1>`,
  "/prerendered": `<!doctype html><title>prerendered</title><h1 id="h">next page</h1><p id="act"></p><script>
setInterval(() => { const w = window.open("/form", "_blank"); if (w) document.getElementById("act").textContent += "w"; }, 50);
</script>`,
  // Clicks that reach their handler although the point is not plainly the element (a review of the hit test): an
  // item of a scroll list out of its view, a button in a shadow root with slotted text, a hollow SVG path in a
  // clickable div, a pointer-events: none icon, a label its radio is stretched over, a field under the tooltip the
  // last hover opened, a button half under a sticky header. Each handler adds its name to #log.
  "/reachable": `<!doctype html><title>reachable</title><style>#head{position:sticky;top:0;height:60px;background:#eee;z-index:3}</style>
<div id="head">sticky header</div><p id="log"></p>
<script>const log = (w) => { document.getElementById("log").textContent += w + " "; };</script>
<div id="list" style="height:120px;overflow:auto">${Array.from({ length: 12 }, (_, i) => `<div id="i${i}" style="height:40px" onclick="log('i${i}')">item ${i}</div>`).join("")}</div>
<x-btn>Buy now</x-btn>
<script>customElements.define("x-btn", class extends HTMLElement { constructor() { super(); const r = this.attachShadow({ mode: "open" }); r.innerHTML = '<button id="inner" style="padding:10px 30px"><slot></slot></button>'; r.getElementById("inner").addEventListener("click", () => log("shadow")); } });</script>
<div id="search" style="display:inline-block;padding:10px" onclick="log('lens')"><svg width="48" height="48" viewBox="0 0 24 24"><path id="lens" d="M10 4a6 6 0 1 0 0 12a6 6 0 1 0 0-12z M15 15l5 5" fill="none" stroke="black" stroke-width="2"/></svg></div>
<div id="opt" role="option" onclick="log('option')"><span id="opt-icon" style="pointer-events:none">✓</span> Apple</div>
<div style="position:relative;width:200px;height:40px"><input id="plan" type="radio" name="plan" style="position:absolute;inset:0;width:100%;height:100%;margin:0;opacity:0" onchange="log('plan')"><label for="plan" id="plan-label">Premium plan</label></div>
<span id="help" style="display:inline-block;padding:4px;border:1px solid">?</span><div id="tip" style="display:none;position:absolute;width:300px;height:60px;background:#ffc;z-index:5">help text</div><button id="next" onclick="log('next')">next</button>
<div style="height:1500px"></div><button id="far" onclick="log('far')" style="height:40px">far below</button><div style="height:1500px"></div>
<script>const h = document.getElementById("help"), t = document.getElementById("tip"), n = document.getElementById("next");
h.onmouseenter = () => { const r = n.getBoundingClientRect(); t.style.left = (r.left + scrollX - 20) + "px"; t.style.top = (r.top + scrollY - 20) + "px"; t.style.display = "block"; };
h.onmouseleave = () => { t.style.display = "none"; };</script>`,
  // No doctype (quirks mode: the root's clientHeight is the whole page's), a button far below the fold, and a fixed
  // footer over the lower half of the window, where the button is once scrolled to the middle.
  "/quirks-footer": `<html><head><title>quirks</title></head><body style="margin:0"><div style="height:3000px"></div>
<button id="far" onclick="this.dataset.clicked = 'yes'" style="height:40px">far below</button><div style="height:3000px"></div>
<div id="footer" style="position:fixed;left:0;right:0;bottom:0;height:55%;background:#eee">footer</div></body></html>`,
  // A page that broke what the worker's hit test uses (its own prototypes): the click still goes ahead.
  "/broken-rects": `<!doctype html><title>broken</title><button id="b" onclick="this.dataset.clicked = 'yes'">b</button>
<script>Element.prototype.getClientRects = function () { throw new Error("no rects for you"); };</script>`,
  // Opens a window every 50 ms, and adds a text field 1.5 s after its load. Says in its console (the job's logs)
  // how many tries it made before the field was there, and each window it got with the field's state then.
  "/popups-late-field": `<!doctype html><html><head><title>late field</title></head><body><p id="p">x</p><script>
let tries = 0;
setInterval(() => {
  const f = document.getElementById("late");
  if (!f) tries++;
  if (window.open("/form", "_blank")) console.warn("window opened, #late " + (f ? (f.value ? "filled" : "empty") : "absent"));
}, 50);
addEventListener("load", () => setTimeout(() => { const i = document.createElement("input"); i.id = "late"; document.body.append(i); console.warn("#late added after " + tries + " tries"); }, 1500));
</script></body></html>`,
  // A menu that opens while the mouse is over its bar (CSS :hover) and lies over the content below it; the bar
  // takes the window's top-left corner.
  "/hover-menu": `<!doctype html><title>hover menu</title><style>body{margin:0} #nav{position:relative;height:40px;background:#ddd}#nav .drop{display:none;position:absolute;top:40px;left:0;width:400px;height:200px;background:#fff;border:1px solid;z-index:9}#nav:hover .drop{display:block}</style>
<div id="nav"><a id="products" href="#products">Products</a><div class="drop">menu items</div></div>
<button id="content" style="margin:100px 20px" onclick="this.dataset.clicked = 'yes'">content</button>`,
  // A same-origin window (it shares the opener's renderer, so its dialog blocks the job's page too) that alerts as it loads.
  "/opens-alerting": `<!doctype html><title>opener</title><h1 id="h">opener</h1><button id="open" onclick="window.open('/alerting')">open</button>`,
  "/alerting": `<!doctype html><title>alerting</title><script>opener.document.getElementById("h").setAttribute("data-popup", "open"); alert("hello from the popup");</script><p>popup</p>`,
  "/alert": `<!doctype html><title>alert</title><script>alert("hello from the page"); confirm("sure?");</script><h1 id="after">after the dialogs</h1>`,
  // Three .item elements, then the page blocks its main thread for 4 s once loaded: no check of it is answered meanwhile.
  "/busy": `<!doctype html><title>busy</title><ul><li class="item">1</li><li class="item">2</li><li class="item">3</li></ul><script>
addEventListener("load", () => setTimeout(() => { const end = Date.now() + 4000; while (Date.now() < end); }, 0));
</script>`,
  // Spins its main thread for ever once loaded: nothing in it answers again (what the hard timeout exists for).
  "/spin": `<!doctype html><title>spinning</title><h1 id="h">spinning</h1><script>
addEventListener("load", () => setTimeout(() => { for (;;); }, 0));
</script>`,
  "/form": `<!doctype html><html><head><title>Troupe test form</title></head><body>
<h1 id="heading">Sign up</h1>
<label for="name">Name</label><input id="name" name="name" aria-label="Name">
<select id="plan"><option value="free">Free</option><option value="pro">Pro</option></select>
<button id="submit" type="button" onclick="setTimeout(() => { const r = document.createElement('p'); r.id = 'result'; r.textContent = 'Hello ' + document.getElementById('name').value + ' (' + document.getElementById('plan').value + ')'; document.body.appendChild(r); }, 150)">Submit</button>
<ul><li class="item"><a href="/a">Alpha</a></li><li class="item"><a href="/b">Beta</a></li><li class="item"><a href="/c">Gamma</a></li></ul>
<div style="height:2000px"></div><footer id="foot">end</footer>
</body></html>`,
  "/signup": `<!doctype html><html><head><title>Troupe sign-up</title></head><body>
<form action="/submitted" method="get"><label for="name">Name</label><input id="name" name="name">
<select id="plan" name="plan"><option value="free">Free</option><option value="pro">Pro</option></select>
<button id="submit" type="submit">Submit</button></form></body></html>`,
  "/echo": `<!doctype html><html><head><title>echo</title></head><body><pre id="info"></pre><script>
document.getElementById('info').textContent = JSON.stringify({ userAgent: navigator.userAgent, language: navigator.language,
  timezone: Intl.DateTimeFormat().resolvedOptions().timeZone, width: window.innerWidth, height: window.innerHeight, screenWidth: screen.width });
const geo = (text) => { const g = document.createElement('pre'); g.id = 'geo'; g.textContent = text; document.body.appendChild(g); };
navigator.geolocation.getCurrentPosition((p) => geo(JSON.stringify({ lat: p.coords.latitude, lon: p.coords.longitude })), (e) => geo('error ' + e.message));
</script></body></html>`,
  // What a frame (a cross-site one: its own renderer process) and a dedicated worker of it see of the fingerprint.
  "/fp-probe": `<!doctype html><html><head><title>probe</title></head><body><script>
const seen = { userAgent: navigator.userAgent, platform: navigator.platform, languages: navigator.languages, timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
  screenWidth: screen.width, dpr: window.devicePixelRatio };
const w = new Worker(URL.createObjectURL(new Blob(["postMessage({ userAgent: navigator.userAgent, platform: navigator.platform, languages: navigator.languages, timezone: Intl.DateTimeFormat().resolvedOptions().timeZone })"], { type: "text/javascript" })));
w.onmessage = (e) => parent.postMessage(JSON.stringify({ frame: seen, worker: e.data }), "*");
</script></body></html>`,
  // A dedicated worker that fetches: with Puppeteer's request interception on, such fetches hung now and then (puppeteer#14515).
  "/worker-fetch": `<!doctype html><html><head><title>worker fetch</title></head><body><p id="w">pending</p><script>
const w = new Worker(URL.createObjectURL(new Blob(["fetch(self.name + '/form?from=worker').then((r) => postMessage(String(r.status)), (e) => postMessage('error ' + e.message))"], { type: "text/javascript" })), { name: location.origin });
w.onmessage = (e) => { const p = document.getElementById("w"); p.textContent = e.data; p.className = "done"; };
</script></body></html>`,
  "/widgets": `<!doctype html><html><head><title>widgets</title></head><body>
<h2 id="dbl" ondblclick="this.dataset.dbl = 'yes'">double-click me</h2>
<input id="keys" onkeydown="this.dataset.keys = (this.dataset.keys || '') + event.key + ' '">
<div id="box" style="height:100px;overflow:auto" onscroll="this.dataset.top = String(this.scrollTop)"><div style="height:1000px">tall</div></div>
<button id="hov" onmouseover="this.dataset.hovered = 'yes'">hover me</button>
</body></html>`,
  "/big": `<!doctype html><html><head><title>big</title></head><body><div id="big">${"<p>lorem ipsum dolor sit amet</p>".repeat(8000)}</div></body></html>`,
  "/error": `<!doctype html><html><head><title>broken</title></head><body><p id="p">x</p><script>console.error("boom from the page")</script></body></html>`,
  // Console errors that cost 6 bytes of JSON per character (their job.completed was 361 kB and refused: the outcome was lost).
  "/log-ctrl": `<!doctype html><html><head><title>t</title></head><body><h1 id="h">x</h1><script>for (let i = 0; i < 20; i++) console.error("\\x01".repeat(3990));</script></body></html>`,
  // A 5000-character title: every failed title assert quotes it in its step error.
  "/long-title": `<!doctype html><html><head><title>${"long ".repeat(1000)}</title></head><body><h1 id="h">x</h1></body></html>`,
  // 60,000 px tall (and a tall element): a full-page screenshot of it would be 48M pixels at 800 px wide.
  "/tall": `<!doctype html><html><head><title>tall</title><style>body{margin:0} #top{height:200px;background:#c00} #long{height:60000px;background:linear-gradient(#fff,#00c)}</style></head><body><div id="top"></div><div id="long"></div></body></html>`,
  // A 50M-character title: copied into the worker whole, it cost hundreds of MB (and a whole copy per assert poll).
  "/huge-title": `<!doctype html><html><head><title>t</title></head><body><h1 id="h">x</h1><script>document.title = "x".repeat(50_000_000);</script></body></html>`,
  // Opens a window every 50 ms without a user gesture (a popup flood: every one a renderer when on another site).
  "/popups": `<!doctype html><html><head><title>popups</title></head><body><p id="p">x</p><script>
setInterval(() => window.open("/form", "_blank"), 50);
</script></body></html>`,
  // Opens a window when an option is chosen (a user's act in a browser, so the popup blocker lets it through).
  "/select-opens": `<!doctype html><html><head><title>select</title></head><body><select id="s" onchange="window.open('/form', '_blank')"><option value="a">a</option><option value="b">b</option></select></body></html>`,
  "/new-window-link": `<!doctype html><html><head><title>link</title></head><body><a id="open" href="/form" target="_blank">open</a></body></html>`,
  // Lies about its size to the worker's checks (its own JavaScript answers them): says 500 px for a 60,200 px page.
  "/tall-liar": `<!doctype html><html><head><title>tall</title><style>body{margin:0} #long{height:60000px;background:linear-gradient(#fff,#00c)}</style></head><body><div style="height:200px"></div><div id="long"></div><script>
Object.defineProperty(Element.prototype, "scrollHeight", { get() { return 500; } });
Object.defineProperty(window, "devicePixelRatio", { get() { return 1; } });
</script></body></html>`,
  // A 100,000-character title, with slice and includes replaced to hand back all of it (or a megabyte).
  "/title-liar": `<!doctype html><html><head><title>t</title></head><body><p>x</p><script>
document.title = "y".repeat(100000);
String.prototype.slice = function () { return String(this); };
String.prototype.includes = function () { return "z".repeat(1000000); };
</script></body></html>`,
  // A hostile page: floods the session history (it kept Chromium's browser process busy for minutes).
  // From its load event: begun while the page was still loading, the flood held its navigation past a 4 s hard
  // timeout on a loaded machine, and the job ended before the test saw it running.
  "/flood": `<!doctype html><html><head><title>flood</title></head><body><p id="p">flooding</p><script>
addEventListener("load", () => setInterval(() => { for (let i = 0; i < 1000; i++) history.pushState({}, "", "#" + Math.random()); }, 0));
</script></body></html>`,
};

export interface TestPages {
  url(path: string): string;
  port: number;
  /** Request headers of every request, by path. */
  headers: Map<string, IncomingHttpHeaders>;
  /** Every requested path with its query, in order. */
  urls: string[];
  /** Resolves when a request to /hang is closed by the client (the page really stopped). */
  hangClosed: Promise<void>;
  hangOpened: Promise<void>;
  close(): Promise<void>;
}

/** Serves PAGES; `/hang` accepts the request and never answers. */
export async function startPages(): Promise<TestPages> {
  const headers = new Map<string, IncomingHttpHeaders>();
  const urls: string[] = [];
  let onHangClosed!: () => void;
  let onHangOpened!: () => void;
  const hangClosed = new Promise<void>((r) => (onHangClosed = r));
  const hangOpened = new Promise<void>((r) => (onHangOpened = r));
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0] as string;
    headers.set(path, req.headers);
    if (path === "/hang") {
      onHangOpened();
      req.socket.on("close", () => onHangClosed());
      return;
    }
    urls.push(req.url ?? "/");
    if (path === "/report.pdf") {
      // A document sent as a download: Chromium ends the navigation with net::ERR_ABORTED.
      res.writeHead(200, { "content-type": "application/pdf", "content-disposition": "attachment; filename=report.pdf" });
      res.end("%PDF-1.4 not really");
      return;
    }
    if (path === "/redirect") {
      res.writeHead(302, { location: `http://127.0.0.1:${port}/form` });
      res.end();
      return;
    }
    if (path === "/embed") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(`<!doctype html><title>embed</title><p id="p">embedding</p><img src="http://127.0.0.1:${port}/secret.png">`);
      return;
    }
    if (path === "/socket") {
      // Opens a WebSocket to a private address (request interception never sees WebSockets) and shows what became of it.
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(`<!doctype html><title>socket</title><p id="s">pending</p><script>const s = document.getElementById("s"); const w = new WebSocket("ws://127.0.0.1:${port}/secret-socket"); w.onopen = () => { s.textContent = "open"; s.className = "done"; }; w.onerror = () => { s.textContent = "error"; s.className = "done"; };</script>`);
      return;
    }
    if (path === "/poll-private") {
      // Keeps asking a private address (refused on a guarded worker) and links to the port given, where nothing listens.
      const down = new URL(req.url ?? "/", "http://x").searchParams.get("down");
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(`<!doctype html><title>poll</title><a id="down" href="http://localhost:${down}/gone">gone</a><script>setInterval(() => fetch("http://127.0.0.1:${port}/private").catch(() => {}), 30);</script>`);
      return;
    }
    if (path === "/sw-forge.js") {
      // A service worker that answers /forged with the egress proxy's marker header, as a hostile site could.
      res.writeHead(200, { "content-type": "text/javascript" });
      res.end(`self.addEventListener("install", () => self.skipWaiting()); self.addEventListener("activate", (e) => e.waitUntil(clients.claim()));
self.addEventListener("fetch", (e) => { if (new URL(e.request.url).pathname === "/forged") e.respondWith(new Response("<p id=ok>a fine page</p>", { headers: { "content-type": "text/html", "x-troupe-egress": "refused" } })); });`);
      return;
    }
    if (path === "/sw-forge") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(`<!doctype html><title>sw</title><p id="s">pending</p><script>navigator.serviceWorker.register("/sw-forge.js").then(() => navigator.serviceWorker.ready).then(() => { document.getElementById("s").className = "done"; }, (e) => { const s = document.getElementById("s"); s.textContent = String(e); s.className = "done"; });</script>`);
      return;
    }
    if (path === "/frame-then-private") {
      // A click starts a frame that never loads, then sends the page to a private address.
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(`<!doctype html><title>frame</title><button id="b" onclick='const f = document.createElement("iframe"); f.src = "http://localhost:${port}/hang"; document.body.append(f); setTimeout(() => { location.href = "http://127.0.0.1:${port}/private"; }, 300)'>go</button>`);
      return;
    }
    if (path === "/link-to") {
      // A link to the address given, and a form posting to it: a scenario's last step follows one.
      const to = (new URL(req.url ?? "/", "http://x").searchParams.get("to") ?? "/").replace(/[<>"&]/g, "");
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(`<!doctype html><title>links</title><a id="go" href="${to}">go</a><form method="post" action="${to}"><button id="send">send</button></form>`);
      return;
    }
    if (path === "/links-elsewhere") {
      // Links that load no document of this page's own: another window, a mail client, a fragment, a script.
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(`<!doctype html><title>elsewhere</title><a id="blank" target="_blank" href="/form">window</a><a id="mail" href="mailto:someone@example.com">mail</a><a id="hash" href="#foot">hash</a><a id="js" href="javascript:void(0)">js</a><p id="foot">foot</p>`);
      return;
    }
    if (path === "/slow-download") {
      // A download whose body never ends (its first bytes tell Chromium it is one; headers alone are a slow answer).
      res.writeHead(200, { "content-type": "application/octet-stream", "content-disposition": 'attachment; filename="big.bin"' });
      res.write("x".repeat(1024));
      return;
    }
    if (path === "/server-error") {
      res.writeHead(500, { "content-type": "text/html; charset=utf-8" });
      res.end(`<!doctype html><title>500 Internal Server Error</title><h1 id="h">oops</h1>`);
      return;
    }
    if (path === "/no-content") {
      // A navigation here commits nothing: the page stays where it was.
      res.writeHead(204);
      res.end();
      return;
    }
    if (path === "/drop") {
      // Reads the request, then hangs up without answering (a target that fails mid-request).
      setTimeout(() => req.socket.destroy(), 300);
      return;
    }
    if (path === "/needs-auth") {
      // HTTP auth of the site's own: whoever answers the challenge is recorded (the egress proxy's login must not be).
      if (req.headers.authorization) urls.push(`authorization ${path} ${req.headers.authorization}`);
      res.writeHead(401, { "www-authenticate": 'Basic realm="site"', "content-type": "text/html; charset=utf-8" });
      res.end(`<!doctype html><title>login needed</title><p id="p">401</p><script>
fetch("/needs-auth?from=fetch").then((r) => { const s = document.createElement("p"); s.id = "fetched"; s.textContent = String(r.status); document.body.appendChild(s); });
</script>`);
      return;
    }
    if (path === "/fp-frames") {
      // The probe on another site (localhost, not 127.0.0.1): Chromium runs it out of process, with its own CDP target.
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(`<!doctype html><title>frames</title><pre id="main"></pre><pre id="probe"></pre><script>
document.getElementById("main").textContent = JSON.stringify({ platform: navigator.platform, languages: navigator.languages, timezone: Intl.DateTimeFormat().resolvedOptions().timeZone, screenWidth: screen.width, dpr: window.devicePixelRatio });
addEventListener("message", (e) => { const p = document.getElementById("probe"); p.textContent = e.data; p.className = "done"; });
</script><iframe src="http://localhost:${port}/fp-probe"></iframe>`);
      return;
    }
    if (path === "/submitted") {
      const q = new URL(req.url ?? "/", "http://x").searchParams;
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(`<!doctype html><title>Thanks</title><h1 id="thanks">Thanks, ${q.get("name")?.replace(/[<&]/g, "")}</h1><div style="height:1500px"></div><ul><li><a href="/a">Alpha</a></li><li><a href="/b">Beta</a></li></ul>`);
      return;
    }
    const body = PAGES[path] ?? `<!doctype html><title>${path}</title><p>page ${path}</p>`;
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(body);
  });
  // A WebSocket handshake that gets here is recorded and dropped.
  server.on("upgrade", (req: IncomingMessage, socket: Duplex) => {
    urls.push(`upgrade ${req.url ?? "/"}`);
    socket.destroy();
  });
  let port = 0;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as { port: number }).port;
  return {
    port,
    url: (p) => `http://127.0.0.1:${port}${p}`,
    headers,
    urls,
    hangClosed,
    hangOpened,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** Starts an in-process worker against the test server, configured through its real options. */
export async function startTestWorker(nats: TestNats, env: Record<string, string> = {}, argv: string[] = [], o: { progressEveryMs?: number; failureWaitMs?: number } = {}): Promise<Worker> {
  const allEnv = { ...nats.env(), TROUPE_WORKER_NAME: "Worker Node Test 01", TROUPE_WORKER_PORT: "0", TROUPE_WORKER_HOST: "127.0.0.1", TROUPE_HEARTBEAT_MS: "500",
    // The test machine is shared and often at 100% CPU; the overload refusal is unit-tested (admission.test.ts).
    TROUPE_MAX_CPU: "100",
    // Most tests run no master: a hold their load causes (an acknowledgement late by more than the fence's 1.25 s)
    // asks nobody for 5 s, not 30 (link-fence.test, which needs a slow master's answer, sets its own).
    TROUPE_ATTEMPT_CHECK_MS: "5000", ...env };
  const { values } = parseOptions(workerOptions, argv, allEnv);
  return startWorker(resolveConfig(values), { log: createLogger("worker-test", process.env.TROUPE_LOG_LEVEL ?? "warn"), env: allEnv, progressEveryMs: o.progressEveryMs ?? 300, ...(o.failureWaitMs !== undefined ? { failureWaitMs: o.failureWaitMs } : {}) });
}

/** Every Troupe event seen on the wire (core subscription), decoded with the contract. */
export class EventLog {
  readonly events: TroupeEvent[] = [];
  readonly invalid: string[] = [];
  private constructor(private readonly nc: NatsConnection) {}

  static async start(nats: TestNats): Promise<EventLog> {
    const nc = await nats.connect("master", "test-event-log");
    const log = new EventLog(nc);
    nc.subscribe("troupe.evt.>", { callback: (_e, m) => log.add(m.subject, m.data) });
    nc.subscribe("troupe.hb.>", { callback: (_e, m) => log.add(m.subject, m.data) });
    await nc.flush();
    return log;
  }

  private add(subject: string, data: Uint8Array) {
    const d = decodeEvent(subject, data);
    if (d.ok) this.events.push(d.value);
    else this.invalid.push(`${subject}: ${d.error.path} ${d.error.message}`);
  }

  of<T extends EventType>(type: T, pred: (e: Extract<TroupeEvent, { type: T }>) => boolean = () => true): Extract<TroupeEvent, { type: T }>[] {
    return this.events.filter((e): e is Extract<TroupeEvent, { type: T }> => e.type === type && pred(e as Extract<TroupeEvent, { type: T }>));
  }

  /**
   * Waits for a heartbeat of the worker instance stamped after `sinceMs` (Date.now() of this process, the worker's
   * machine). A worker publishes on one connection, and this log receives one publisher's messages in order: whatever
   * the instance published before that heartbeat has been received, such as an event stored before a reply the test
   * holds. For asserting that something did NOT happen: read at once after a reply, a missing event may only be one
   * still on its way. (A round trip on the log's own connection proves nothing of the kind: an append acknowledged
   * before it was still missing after it, 3 times in 2,000.)
   */
  heardAfter(instanceId: string, sinceMs: number, timeoutMs = 20_000): Promise<Extract<TroupeEvent, { type: "worker.heartbeat" }>> {
    return this.wait("worker.heartbeat", (e) => e.data.instanceId === instanceId && Date.parse(e.time) > sinceMs, timeoutMs);
  }

  /** Waits for the first event of a type matching pred. */
  wait<T extends EventType>(type: T, pred: (e: Extract<TroupeEvent, { type: T }>) => boolean = () => true, timeoutMs = 20_000): Promise<Extract<TroupeEvent, { type: T }>> {
    return waitFor(`a ${type} event`, () => this.of(type, pred)[0], timeoutMs);
  }

  /** The first final event (completed or failed) of a job. */
  final(jobId: string, timeoutMs = 30_000): Promise<Extract<TroupeEvent, { type: "job.completed" | "job.failed" }>> {
    return waitFor(`job ${jobId} to end`, () => this.events.find((e): e is Extract<TroupeEvent, { type: "job.completed" | "job.failed" }> =>
      (e.type === "job.completed" || e.type === "job.failed") && e.data.jobId === jobId), timeoutMs);
  }
}

let seq = 0;
/** A unique job id per test. */
export const jobId = (tag: string) => `job-${tag}-${process.pid}-${++seq}`;
