// deepscope web app: small page scripts on top of the JSON API (/api, see /docs).
"use strict";

function showMessage(text) {
  const box = document.getElementById("message");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(showMessage.timer);
  showMessage.timer = setTimeout(() => { box.hidden = true; }, 8000);
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    let detail = body && body.detail !== undefined ? body.detail : body;
    if (Array.isArray(detail)) detail = detail.map((d) => `${d.loc.slice(-1)}: ${d.msg}`).join("; ");
    throw new Error(String(detail || response.statusText));
  }
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// ------------------------------------------------------------------ line plots
const COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c"];

function plot(canvas, series, xLabel = "") {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 46, B = 26, T = 10, R = 10;
  ctx.clearRect(0, 0, W, H);
  const pts = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p[1]));
  if (!pts.length) { ctx.fillStyle = "#667085"; ctx.fillText("no data yet", L, H / 2); return; }
  let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y1 += 0.5; y0 -= 0.5; }
  const X = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
  const Y = (y) => H - B - (y - y0) / (y1 - y0) * (H - B - T);
  ctx.strokeStyle = "#98a2b3"; ctx.fillStyle = "#475467"; ctx.font = "11px sans-serif";
  ctx.beginPath(); ctx.moveTo(L, T); ctx.lineTo(L, H - B); ctx.lineTo(W - R, H - B); ctx.stroke();
  for (const v of [y0, (y0 + y1) / 2, y1]) ctx.fillText(v.toPrecision(3), 2, Y(v) + 4);
  ctx.fillText(String(Math.round(x0)), L, H - 8);
  ctx.fillText(`${Math.round(x1)} ${xLabel}`, W - R - 60, H - 8);
  series.forEach((s, i) => {
    ctx.strokeStyle = s.colour || COLOURS[i % COLOURS.length];
    ctx.beginPath();
    s.points.forEach(([x, y], j) => (j ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y))));
    ctx.stroke();
    ctx.fillStyle = ctx.strokeStyle;
    ctx.fillText(s.name, L + 8 + i * 90, T + 10);
  });
}

// ------------------------------------------------------------------ models page
async function modelsPage() {
  const tbody = document.querySelector("#model-table tbody");
  const filters = { source: "", task: "", architecture: "", domain: "" };
  const all = await api("/api/models");
  const fill = (id, key) => {
    const select = document.getElementById(id);
    for (const v of [...new Set(all.map((m) => m[key]))].sort()) select.append(el("option", { text: v }));
    select.onchange = () => { filters[key] = select.value; load(); };
  };
  fill("filter-task", "task");
  fill("filter-arch", "architecture");
  document.getElementById("filter-domain").oninput = (e) => { filters.domain = e.target.value; load(); };
  document.querySelectorAll("#source-tabs button").forEach((b) => {
    b.onclick = () => {
      document.querySelectorAll("#source-tabs button").forEach((o) => o.classList.remove("on"));
      b.classList.add("on");
      filters.source = b.dataset.source;
      load();
    };
  });
  async function load() {
    const q = new URLSearchParams();
    if (filters.task) q.set("task", filters.task);
    if (filters.architecture) q.set("architecture", filters.architecture);
    if (filters.domain) q.set("domain", filters.domain);
    if (filters.source === "favourites") q.set("favourites", "true");
    else if (filters.source) q.set("source", filters.source);
    const rows = await api(`/api/models?${q}`);
    tbody.replaceChildren(...rows.map((m) => {
      const tr = el("tr", { "data-name": m.name },
        el("td", { text: m.favourite ? "★" : "" }), el("td", { text: m.name }), el("td", { text: m.task }),
        el("td", { text: m.architecture }), el("td", { text: m.domain }),
        el("td", { text: m.dimensionality }), el("td", { text: m.source }));
      tr.onclick = () => details(m.name, tr);
      return tr;
    }));
  }
  async function details(name, row) {
    document.querySelectorAll("#model-table tr").forEach((r) => r.classList.remove("selected"));
    row.classList.add("selected");
    const m = await api(`/api/models/${encodeURIComponent(name)}`);
    document.getElementById("model-details").hidden = false;
    document.getElementById("md-name").textContent = `${m.name} (${m.task}, ${m.source})`;
    document.getElementById("md-description").textContent = m.description || "";
    const fav = document.getElementById("md-favourite");
    fav.textContent = m.favourite ? "★ Unfavourite" : "☆ Favourite";
    fav.onclick = async () => {
      await api(`/api/models/${encodeURIComponent(name)}/favourite`, {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ favourite: !m.favourite }),
      });
      await load();
      details(name, document.querySelector(`#model-table tr[data-name="${CSS.escape(name)}"]`) || row);
    };
    const quoted = encodeURIComponent(name);
    document.getElementById("md-use").href = `/analyse?model=${quoted}`;
    document.getElementById("md-export").href = `/api/models/${quoted}/export?format=deepscope`;
    document.getElementById("md-export-bioimageio").href = `/api/models/${quoted}/export?format=bioimageio`;
    const remove = document.getElementById("md-remove");
    remove.hidden = m.source !== "user";
    remove.onclick = async () => {
      if (!confirm(`Remove ${name} from your library?`)) return;
      try {
        await api(`/api/models/${quoted}`, { method: "DELETE" });
        document.getElementById("model-details").hidden = true;
        load();
      } catch (err) { showMessage(err.message); }
    };
    const table = (id, obj) => document.getElementById(id).replaceChildren(
      ...Object.entries(obj || {}).filter(([, v]) => typeof v !== "object" || v === null)
        .map(([k, v]) => el("tr", {}, el("td", { text: k }),
          el("td", { text: typeof v === "number" ? +v.toPrecision(4) : String(v) }))));
    table("md-validation", m.validation);
    table("md-training", m.training_settings);
    const h = m.history || [];
    plot(document.getElementById("md-curves"), [
      { name: "train loss", points: h.map((r) => [r.epoch, r.train_loss]) },
      { name: "val loss", points: h.map((r) => [r.epoch, r.val_loss]) },
    ], "epoch");
  }
  document.getElementById("import-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData();
    data.set("file", document.getElementById("import-file").files[0]);
    try {
      const added = await api("/api/models/import", { method: "POST", body: data });
      showMessage(`imported ${added.name} into My models`);
      load();
    } catch (err) { showMessage(err.message); }
  });
  load();
}

// ------------------------------------------------------------------ analyse page
class Viewer {
  constructor(canvas, linked) {
    this.canvas = canvas; this.ctx = canvas.getContext("2d");
    this.scale = 1; this.tx = 0; this.ty = 0; this.contrast = 1;
    this.outlines = true; this.colours = false; this.cursor = null; this.linked = linked || [];
    let drag = null;
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      const f = e.deltaY < 0 ? 1.25 : 0.8, [mx, my] = this.mouse(e);
      this.zoomAt(mx, my, f);
    });
    canvas.addEventListener("mousedown", (e) => { drag = [e.clientX, e.clientY]; });
    window.addEventListener("mouseup", () => { drag = null; });
    canvas.addEventListener("mousemove", (e) => {
      if (drag) {
        this.pan(e.clientX - drag[0], e.clientY - drag[1]);
        drag = [e.clientX, e.clientY];
      }
      const [mx, my] = this.mouse(e);
      this.hover(Math.floor((mx - this.tx) / this.scale), Math.floor((my - this.ty) / this.scale));
    });
  }
  mouse(e) {
    const r = this.canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * this.canvas.width / r.width, (e.clientY - r.top) * this.canvas.height / r.height];
  }
  views() { return [this, ...this.linked]; }
  zoomAt(mx, my, f) {
    for (const v of this.views()) {
      v.tx = mx - (mx - v.tx) * f; v.ty = my - (my - v.ty) * f; v.scale *= f; v.draw();
    }
  }
  pan(dx, dy) {
    const k = this.canvas.width / this.canvas.getBoundingClientRect().width;
    for (const v of this.views()) { v.tx += dx * k; v.ty += dy * k; v.draw(); }
  }
  hover(x, y) {
    for (const v of this.views()) { v.cursor = [x, y]; v.draw(); }
    if (this.onhover) this.onhover(x, y);
  }
  async load(imageUrl, labelsUrl) {
    this.image = await loadImage(imageUrl);
    this.ids = null; this.layer = null;
    if (labelsUrl) {
      const labels = await loadImage(labelsUrl);
      const c = el("canvas"); c.width = labels.width; c.height = labels.height;
      const cx = c.getContext("2d"); cx.drawImage(labels, 0, 0);
      const d = cx.getImageData(0, 0, c.width, c.height).data;
      this.ids = new Uint32Array(c.width * c.height);
      for (let i = 0; i < this.ids.length; i++) this.ids[i] = d[4 * i] + 256 * d[4 * i + 1] + 65536 * d[4 * i + 2];
      this.w = c.width; this.h = c.height;
      this.makeLayer();
    }
    this.fit();
  }
  idAt(x, y) {
    if (!this.ids || x < 0 || y < 0 || x >= this.w || y >= this.h) return 0;
    return this.ids[y * this.w + x];
  }
  makeLayer() {
    const { w, h, ids } = this;
    const c = el("canvas"); c.width = w; c.height = h;
    const cx = c.getContext("2d"), img = cx.createImageData(w, h), d = img.data;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const i = y * w + x, id = ids[i];
      if (!id) continue;
      const edge = (x > 0 && ids[i - 1] !== id) || (x < w - 1 && ids[i + 1] !== id) ||
        (y > 0 && ids[i - w] !== id) || (y < h - 1 && ids[i + w] !== id);
      if (!edge && !this.colours) continue;
      if (edge && !this.outlines && !this.colours) continue;
      const r = (id * 97) % 200 + 55, g = (id * 57) % 200 + 55, b = (id * 151) % 200 + 55;
      d.set([r, g, b, edge && this.outlines ? 255 : 90], 4 * i);
    }
    cx.putImageData(img, 0, 0);
    this.layer = c;
  }
  fit() {
    const src = this.image;
    this.scale = Math.min(this.canvas.width / src.width, this.canvas.height / src.height);
    this.tx = (this.canvas.width - src.width * this.scale) / 2;
    this.ty = (this.canvas.height - src.height * this.scale) / 2;
    this.draw();
  }
  draw() {
    const ctx = this.ctx;
    if (!this.image) return;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.imageSmoothingEnabled = false;
    ctx.setTransform(this.scale, 0, 0, this.scale, this.tx, this.ty);
    ctx.filter = `contrast(${this.contrast})`;
    ctx.drawImage(this.image, 0, 0);
    ctx.filter = "none";
    if (this.layer && (this.outlines || this.colours)) ctx.drawImage(this.layer, 0, 0);
    if (this.cursor) {
      const [x, y] = this.cursor;
      ctx.strokeStyle = "#facc15"; ctx.lineWidth = 1 / this.scale;
      ctx.strokeRect(x, y, 1, 1);
    }
  }
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`cannot load ${url}`));
    img.src = `${url}?t=${Date.now()}`;
  });
}

function greyRow(img, y) {
  const c = el("canvas"); c.width = img.width; c.height = 1;
  c.getContext("2d").drawImage(img, 0, y, img.width, 1, 0, 0, img.width, 1);
  const d = c.getContext("2d").getImageData(0, 0, img.width, 1).data;
  return Array.from({ length: img.width }, (_, x) => [x, (d[4 * x] + d[4 * x + 1] + d[4 * x + 2]) / 3]);
}

async function analysePage() {
  const select = document.getElementById("model");
  const models = await api("/api/models");
  const wanted = new URLSearchParams(location.search).get("model");
  for (const m of models.filter((m) => m.task !== "autoencoder")) {
    select.append(el("option", { value: m.name, text: `${m.favourite ? "★ " : ""}${m.name} (${m.task})` }));
  }
  if (wanted) select.value = wanted;
  const ranges = document.getElementById("ranges");
  const addRange = (column = "area", lo = "", hi = "") => ranges.append(el("div", { class: "row range" },
    el("input", { class: "r-col", value: column, size: "16", "aria-label": "column" }),
    el("input", { class: "r-min", value: lo, size: "6", placeholder: "min", "aria-label": "minimum" }),
    el("input", { class: "r-max", value: hi, size: "6", placeholder: "max", "aria-label": "maximum" })));
  document.getElementById("add-range").onclick = () => addRange();
  const pathInput = document.getElementById("path");
  if (pathInput) {
    pathInput.addEventListener("input", async () => {
      const folder = pathInput.value.replace(/[^/]*$/, "");
      if (!folder) return;
      try {
        const listing = await api(`/api/files?path=${encodeURIComponent(folder)}`);
        document.getElementById("server-files").replaceChildren(
          ...listing.folders.map((f) => el("option", { value: `${listing.path}/${f}/` })),
          ...listing.images.map((f) => el("option", { value: `${listing.path}/${f}` })));
      } catch (err) { /* typing a path: stay quiet until submit */ }
    });
  }
  const viewer = new Viewer(document.getElementById("viewer"));
  const output = new Viewer(document.getElementById("viewer-output"));
  viewer.linked = [output]; output.linked = [viewer];
  let answer = null;
  const rowsById = new Map();
  const onhover = (x, y) => {
    const id = viewer.idAt(x, y);
    const row = rowsById.get(String(id));
    document.getElementById("hover").textContent = id
      ? `object ${id}${row && row.area ? `, area ${row.area}` : ""} at (${x}, ${y})` : `(${x}, ${y})`;
    if (answer && answer.urls.output && y >= 0 && y < viewer.image.height) {
      plot(document.getElementById("profile"), [
        { name: "input", points: greyRow(viewer.image, y) },
        { name: "output", points: greyRow(output.image, y) },
      ], `x (row ${y})`);
    }
  };
  viewer.onhover = onhover; output.onhover = onhover;
  document.getElementById("show-outlines").onchange = (e) => { viewer.outlines = e.target.checked; viewer.makeLayer(); viewer.draw(); };
  document.getElementById("show-colours").onchange = (e) => { viewer.colours = e.target.checked; viewer.makeLayer(); viewer.draw(); };
  document.getElementById("contrast").oninput = (e) => {
    for (const v of [viewer, output]) { v.contrast = +e.target.value; v.draw(); }
  };
  document.getElementById("zoom-reset").onclick = () => { viewer.fit(); output.fit(); };

  const form = document.getElementById("analyse-form");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const mode = e.submitter ? e.submitter.value : "preview";
    const data = new FormData();
    data.set("model", select.value);
    data.set("mode", mode);
    const file = document.getElementById("file").files[0];
    if (file) data.set("file", file);
    else if (pathInput && pathInput.value) data.set("path", pathInput.value);
    else { showMessage("choose an image: upload a file or give a path on the server"); return; }
    for (const r of ranges.querySelectorAll(".range")) {
      const col = r.querySelector(".r-col").value.trim();
      const lo = r.querySelector(".r-min").value.trim(), hi = r.querySelector(".r-max").value.trim();
      if (col && (lo || hi)) data.append("ranges", `${col}=${lo}:${hi}`);
    }
    data.set("split", document.getElementById("split").checked);
    data.set("exclude_border", document.getElementById("exclude-border").checked);
    const channel = document.getElementById("channel").value.trim();
    if (channel) data.set("channel", channel);
    const busy = document.getElementById("busy");
    busy.hidden = false;
    try {
      answer = await api("/api/predict", { method: "POST", body: data });
      await showResult(answer);
    } catch (err) {
      showMessage(err.message);
    } finally { busy.hidden = true; }
  });

  async function showResult(a) {
    document.getElementById("result").hidden = false;
    await viewer.load(a.urls.image, a.urls.labels);
    const outCanvas = document.getElementById("viewer-output");
    outCanvas.hidden = !a.urls.output;
    document.getElementById("profile").hidden = !a.urls.output;
    if (a.urls.output) await output.load(a.urls.output);
    document.getElementById("n-objects").textContent =
      a.n_objects !== undefined ? `${a.n_objects} objects (${a.mode})` : "";
    const links = Object.entries({ ...a.downloads, ...(a.urls.overlay ? { "overlay.png": a.urls.overlay } : {}) })
      .map(([name, url]) => el("a", { href: url, download: name, class: "button", text: `⬇ ${name}` }));
    document.getElementById("downloads").replaceChildren(...links);
    const summary = document.getElementById("summary");
    summary.replaceChildren();
    if (a.summary) {
      summary.append(el("table", { class: "grid small", id: "summary-table" },
        el("tr", {}, ...Object.keys(a.summary).map((k) => el("th", { text: k }))),
        el("tr", {}, ...Object.values(a.summary).map((v) => el("td", { text: String(v) })))));
    }
    rowsById.clear();
    const table = document.getElementById("objects");
    table.replaceChildren();
    if (a.objects) {
      table.append(el("tr", {}, ...a.columns.map((c) => el("th", { text: c }))));
      for (const row of a.objects) {
        rowsById.set(String(row.label), row);
        table.append(el("tr", {}, ...a.columns.map((c) => el("td", { text: row[c] }))));
      }
    }
  }

  const qc = document.getElementById("qc-form");
  if (qc) qc.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const job = await api("/api/jobs", {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ kind: "evaluate", params: {
          model: select.value, images: document.getElementById("qc-images").value,
          truth: document.getElementById("qc-truth").value } }),
      });
      location.href = `/jobs#${job.id}`;
    } catch (err) { showMessage(err.message); }
  });

  const batch = document.getElementById("run-batch");
  if (batch) batch.onclick = async () => {
    const folder = pathInput.value.replace(/[^/]*$/, "") || pathInput.value;
    if (!folder) { showMessage("give a folder on the server in the path box"); return; }
    const rangesList = [...ranges.querySelectorAll(".range")].map((r) =>
      `${r.querySelector(".r-col").value}=${r.querySelector(".r-min").value}:${r.querySelector(".r-max").value}`)
      .filter((t) => !/=:$/.test(t));
    const split = document.getElementById("split").checked;
    const excludeBorder = document.getElementById("exclude-border").checked;
    const channelText = document.getElementById("channel").value.trim();
    const channel = channelText === "" ? null : Number(channelText);
    // any Count setting makes the batch a count (a preview would ignore them)
    const mode = rangesList.length || split || excludeBorder ? "count" : "preview";
    try {
      const job = await api("/api/jobs", {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ kind: "batch", params: {
          model: select.value, folder, mode, ranges: rangesList, split,
          exclude_border: excludeBorder, channel } }),
      });
      location.href = `/jobs#${job.id}`;
    } catch (err) { showMessage(err.message); }
  };
}

// ------------------------------------------------------------------ train page
function trainPage() {
  const form = document.getElementById("train-form");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const settings = { task: form.dataset.task };
    try {
      for (const input of form.querySelectorAll("[name]")) {
        const type = input.dataset.type, raw = input.value.trim();
        let value;
        if (type === "boolean") value = input.checked;
        else if (raw === "") continue;
        else if (type === "integer") value = parseInt(raw, 10);
        else if (type === "number") value = parseFloat(raw);
        else if (type === "json") value = JSON.parse(raw);
        else value = raw;
        let node = settings;
        const parts = input.name.split(".");
        for (const p of parts.slice(0, -1)) node = node[p] = node[p] || {};
        node[parts[parts.length - 1]] = value;
      }
      const job = await api("/api/jobs", {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ kind: "train", params: { settings } }),
      });
      location.href = `/jobs#${job.id}`;
    } catch (err) { showMessage(err.message); }
  });
}

// ------------------------------------------------------------------ jobs page
function jobsPage() {
  const tbody = document.querySelector("#job-table tbody");
  let current = null, source = null;
  async function list() {
    const jobs = await api("/api/jobs");
    tbody.replaceChildren(...jobs.map((j) => {
      const what = j.kind === "train" ? j.params.settings.name
        : `${j.kind === "evaluate" ? "check " : ""}${j.params.model} on ${j.params.inputs || j.params.images}`;
      const tr = el("tr", { "data-id": j.id }, el("td", { text: j.id }), el("td", { text: j.kind }),
        el("td", { text: what }), el("td", { text: j.status, class: `status-${j.status}` }), el("td", { text: j.attempts }));
      if (j.id === current) tr.classList.add("selected");
      tr.onclick = () => { location.hash = j.id; };
      return tr;
    }));
  }
  async function open(id) {
    current = id;
    if (source) source.close();
    const job = await api(`/api/jobs/${id}`);
    document.getElementById("job-details").hidden = false;
    document.getElementById("jd-title").textContent =
      `#${id} ${job.kind} ${job.kind === "train" ? job.params.settings.name : job.params.model}`;
    const steps = [], epochs = [];
    const status = document.getElementById("jd-status");
    const bar = document.getElementById("jd-bar"), text = document.getElementById("jd-progress");
    const show = (j) => {
      status.textContent = j.status;
      document.getElementById("jd-stop").disabled = !["queued", "running"].includes(j.status);
      document.getElementById("jd-resume").disabled = !["stopped", "failed"].includes(j.status);
      const result = document.getElementById("jd-result");
      result.replaceChildren();
      if (j.error) result.append(el("p", { class: "error", text: `error: ${j.error}` }));
      if (j.result && j.result.model && j.kind === "train") {
        result.append(el("a", { class: "button", href: `/models#${j.result.model}`, text: `${j.result.model} in My models` }));
      }
      if (j.result && j.result.metrics) {
        result.append(el("table", { class: "grid small" }, ...Object.entries(j.result.metrics).map(([k, v]) =>
          el("tr", {}, el("td", { text: k }), el("td", { text: typeof v === "number" ? +v.toPrecision(4) : String(v) })))));
      }
      for (const f of (j.result && j.result.files) || []) {
        result.append(el("a", { class: "button", href: `/api/results/job-${j.id}/${f}`, target: "_blank", text: f }), " ");
      }
      if (j.result && j.result.summary) {
        result.append(el("a", { class: "button", href: `/api/results/job-${j.id}/${j.result.summary}`, text: j.result.summary }));
      }
    };
    const onEvent = (ev) => {
      if (ev.stage === "train" && ev.metrics.loss !== undefined) steps.push([ev.done, ev.metrics.loss]);
      if (ev.stage === "epoch") epochs.push(ev);
      if (ev.total) { bar.max = ev.total; bar.value = ev.done; }
      text.textContent = `${ev.stage} ${ev.done}/${ev.total} ${ev.message || ""}`;
      const perEpoch = steps.length && epochs.length ? steps[steps.length - 1][0] / epochs[epochs.length - 1].done : 1;
      plot(document.getElementById("jd-curves"), [
        { name: "step loss", points: steps },
        { name: "val loss", points: epochs.filter((e) => e.metrics.val_loss !== undefined)
            .map((e) => [e.done * perEpoch, e.metrics.val_loss]) },
      ], "step");
    };
    show(job);
    job.events.forEach(onEvent);
    source = new EventSource(`/api/jobs/${id}/events?after=${job.events.length}`);
    source.onmessage = (m) => { onEvent(JSON.parse(m.data)); status.textContent = "running"; };
    source.addEventListener("end", (m) => { show(JSON.parse(m.data)); source.close(); list(); });
    document.getElementById("jd-stop").onclick = async () => {
      try { show(await api(`/api/jobs/${id}/stop`, { method: "POST" })); } catch (err) { showMessage(err.message); }
    };
    document.getElementById("jd-resume").onclick = async () => {
      try { await api(`/api/jobs/${id}/resume`, { method: "POST" }); open(id); list(); } catch (err) { showMessage(err.message); }
    };
    list();
  }
  window.addEventListener("hashchange", () => open(+location.hash.slice(1)));
  list().then(() => { if (location.hash.length > 1) open(+location.hash.slice(1)); });
  setInterval(list, 5000);
}

const PAGES = { models: modelsPage, analyse: analysePage, train: trainPage, jobs: jobsPage };
document.addEventListener("DOMContentLoaded", () => {
  const init = PAGES[document.body.dataset.page];
  if (init) Promise.resolve(init()).catch((err) => showMessage(err.message));
});
