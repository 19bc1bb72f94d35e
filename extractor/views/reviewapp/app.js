// The review app (`extractor review --serve`): the queue and each document, from the app's JSON API.
// Keyboard first (the keys are listed on the page). Every text is set as text (textContent, append of a
// string); the one piece of markup inserted is a document's text as the server escaped and marked it
// (extractor.views.review.highlight). Talks to nothing but the app (its CSP: connect-src 'self').
"use strict";
(() => {
  const root = document.getElementById("app");
  const schema = document.body.dataset.schema;
  const STATUS_LABELS = {exact: "exact", normalized: "normalized", fuzzy: "fuzzy", derived: "derived",
                         not_found: "not found"};
  const QUEUE_LABELS = {"": "all documents", needs_review: "need review", unreviewed: "not reviewed yet",
                        reviewed: "reviewed", ok: "status ok", failed: "status failed", skipped: "status skipped"};
  const state = {
    queue: null,  // the last GET /api/documents
    filters: JSON.parse(sessionStorage.getItem("extractor-review-filters") || "{}"),
    selected: 0,  // the queue's selected row
    doc: null,  // the open document (GET /api/documents/{id})
    field: 0,  // its selected field
    editing: null,  // the field being edited: {name, read}
    notes: {},  // field -> {kind: "error" | "conflict" | "stored", text}
    banner: null,
  };

  // -- building the page ------------------------------------------------------------------------------

  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child !== null && child !== undefined && child !== false) node.append(child);  // a string: text
    }
    return node;
  }

  function kbd(...keys) {
    return keys.map((k, i) => [i ? " / " : "", h("kbd", {}, k)]).flat();
  }

  function keysBox(items) {
    return h("p", {class: "keys", id: "keys"}, h("strong", {}, "Keys: "),
             items.map(([keys, what]) => h("span", {}, kbd(...keys), " ", what)));
  }

  function progressLine(p) {
    const fill = h("span", {class: "fill"});
    fill.style.width = `${Math.round((100 * p.reviewed) / Math.max(p.documents, 1))}%`;  // CSSOM: allowed by the CSP
    return h("p", {class: "meta", id: "progress"},
             h("span", {class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": String(p.documents),
                        "aria-valuenow": String(p.reviewed)}, fill),
             `${p.reviewed} of ${p.documents} reviewed · ${p.labeled} of the ${p.finetune_needs} labeled ` +
             "documents fine-tuning needs", h("span", {class: "muted"}, " (breakeven's assumption)"));
  }

  function badge(item) {
    if (item.reviewed) return h("span", {class: "badge fine"}, "reviewed");
    if (item.needs_review) return h("span", {class: "badge review"}, "needs review");
    if (item.status === "ok") return h("span", {class: "badge other"}, "grounded");
    return h("span", {class: "badge other"}, item.status);
  }

  function number(value, digits) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
  }

  function when(iso) {
    return iso ? String(iso).replace("T", " ").replace(/\.\d+/, "").replace(/\+00:00$/, " UTC") : "";
  }

  function percent(value) {
    return value === null || value === undefined ? "–" : `${Math.round(value * 100)}%`;
  }

  function flash(text) {
    state.banner = text;
    const old = document.getElementById("banner");
    const node = h("p", {class: "banner", id: "banner", role: "status"}, text || "");
    if (old) old.replaceWith(node); else root.prepend(node);
    node.hidden = !text;
  }

  async function api(method, path, body) {
    const init = {method, headers: {Accept: "application/json"}, credentials: "same-origin"};
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      return {status: 0, data: {error: `the review app does not answer (${error.message}): is it still running?`}};
    }
    let data;
    try {
      data = await response.json();
    } catch (error) {
      data = {error: `${response.status} ${response.statusText}`};
    }
    return {status: response.status, data};
  }

  // -- the queue --------------------------------------------------------------------------------------

  async function loadQueue() {
    const query = new URLSearchParams();
    for (const key of ["field", "status", "evidence"]) if (state.filters[key]) query.set(key, state.filters[key]);
    const {status, data} = await api("GET", "/api/documents" + (query.toString() ? `?${query}` : ""));
    if (status === 400 && Object.values(state.filters).some(Boolean)) {  // filters kept from another schema
      state.filters = {};
      sessionStorage.removeItem("extractor-review-filters");
      return loadQueue();
    }
    if (status !== 200) {
      flash(data.error || `error ${status}`);
      return false;
    }
    state.queue = data;
    state.selected = Math.min(state.selected, Math.max(data.documents.length - 1, 0));
    return true;
  }

  function select(name, label, options, value) {
    const node = h("select", {name, id: `filter-${name}`, "aria-label": label},
                   options.map(([v, text]) => h("option", {value: v}, text)));
    node.value = value || "";
    node.addEventListener("change", async () => {
      state.filters[name] = node.value;
      sessionStorage.setItem("extractor-review-filters", JSON.stringify(state.filters));
      state.selected = 0;
      if (await loadQueue()) renderQueue(`filter-${name}`);
    });
    return h("label", {}, `${label} `, node);
  }

  function renderQueue(focusId) {
    const q = state.queue;
    const f = state.filters;
    const filters = h("form", {id: "filters", onsubmit: (e) => e.preventDefault()},
      select("field", "field", [["", "all fields"], ...q.fields.map((n) => [n, n])], f.field),
      select("status", "show", q.statuses.length ? ["", ...q.statuses].map((s) => [s, QUEUE_LABELS[s] || s]) : [],
             f.status),
      select("evidence", "evidence", [["", "any evidence"], ...q.evidence.map((s) => [s, STATUS_LABELS[s]])],
             f.evidence));
    const rows = q.documents.map((item, i) => h("tr", {
      class: i === state.selected ? "sel" : null, "data-index": String(i), "data-doc": item.doc_id,
      "aria-selected": i === state.selected ? "true" : "false", onclick: () => openAt(i),
    },
      h("td", {}, h("a", {class: "id", href: `#/doc/${encodeURIComponent(item.doc_id)}`, tabindex: "-1"},
                     item.doc_id)),
      h("td", {}, badge(item)),
      h("td", {class: "num"}, number(item.confidence, 2)),
      h("td", {class: "num"}, percent(item.grounded)),
      h("td", {class: "num"}, item.not_found ? String(item.not_found) : ""),
      h("td", {class: "num"}, `${item.checked} / ${item.fields}`)));
    const table = q.documents.length
      ? h("table", {class: "queue", id: "queue"},
          h("thead", {}, h("tr", {}, h("th", {}, "document"), h("th", {}, ""),
                           h("th", {class: "num"}, "lowest confidence"), h("th", {class: "num"}, "grounded"),
                           h("th", {class: "num"}, "not found"), h("th", {class: "num"}, "fields checked"))),
          h("tbody", {}, rows))
      : h("p", {class: "empty"}, "No document matches these filters.");
    root.replaceChildren(
      h("header", {}, h("h1", {}, `Review: ${q.schema}`), progressLine(q.progress),
        h("p", {class: "meta"}, `${q.documents.length} document(s) in the queue, those that need review and are ` +
          `least sure first · labels are stored as ${q.reviewer}'s`), filters),
      h("section", {id: "index"}, table),
      keysBox([[["j", "↓"], "next"], [["k", "↑"], "previous"], [["Enter", "o"], "open"],
               [["f"], "field filter"], [["s"], "show filter"], [["v"], "evidence filter"]]));
    if (state.banner) flash(state.banner);
    if (focusId) document.getElementById(focusId).focus();
    else scrollToSelected();
    document.title = `extractor review: ${q.schema}`;
  }

  function scrollToSelected() {
    const row = document.querySelector("#queue tr.sel");
    if (row) row.scrollIntoView({block: "nearest"});
  }

  function moveQueue(step) {
    const rows = document.querySelectorAll("#queue tbody tr");
    if (!rows.length) return;
    rows[state.selected].classList.remove("sel");
    rows[state.selected].setAttribute("aria-selected", "false");
    state.selected = Math.max(0, Math.min(rows.length - 1, state.selected + step));
    rows[state.selected].classList.add("sel");
    rows[state.selected].setAttribute("aria-selected", "true");
    scrollToSelected();
  }

  function openAt(index) {
    const item = state.queue && state.queue.documents[index];
    if (!item) return;
    state.selected = index;
    location.hash = `#/doc/${encodeURIComponent(item.doc_id)}`;
  }

  // -- a document -------------------------------------------------------------------------------------

  async function openDoc(docId) {
    if (!state.queue && !(await loadQueue())) return;
    const {status, data} = await api("GET", `/api/documents/${encodeURIComponent(docId)}`);
    if (status !== 200) {
      flash(data.error || `error ${status}`);
      return;
    }
    state.doc = data;
    state.editing = null;
    state.notes = {};
    flash(null);
    const index = state.queue.documents.findIndex((d) => d.doc_id === docId);
    if (index >= 0) state.selected = index;
    let start = data.fields.findIndex((f) => f.name === state.filters.field);
    if (start < 0) start = data.fields.findIndex((f) => !f.label);
    state.field = Math.max(start, 0);
    renderDoc();
  }

  function shown(value) {
    if (value === null || value === undefined || (Array.isArray(value) && !value.length) || value === "") {
      return h("span", {class: "empty"}, "no value");
    }
    if (Array.isArray(value)) return value.map((v) => h("span", {class: "item"}, String(v)));
    if (typeof value === "object") {
      return Object.entries(value).map(([k, v]) => h("span", {class: "item"}, h("span", {class: "muted"}, `${k} `),
                                                     v === null ? "–" : String(v)));
    }
    return String(value);
  }

  const STATE_CLASS = {accepted: "accepted", corrected: "corrected", "not in the document": "absent"};

  function control(spec, value, id) {
    const blank = value === null || value === undefined;
    if (spec.kind === "choice") {
      const node = h("select", {id});
      node.append(h("option", {value: ""}, "— no value —"));
      spec.choices.forEach((c, i) => node.append(h("option", {value: String(i)}, String(c))));
      const at = spec.choices.findIndex((c) => JSON.stringify(c) === JSON.stringify(value));
      node.value = at >= 0 ? String(at) : "";
      return {node, focus: node, read: () => (node.value === "" ? null : spec.choices[Number(node.value)])};
    }
    if (spec.kind === "list" || spec.kind === "json") {
      const text = spec.kind === "list" ? (value || []).join("\n") : (blank ? "" : JSON.stringify(value, null, 1));
      const node = h("textarea", {id, rows: String(Math.min(Math.max(3, text.split("\n").length + 1), 12)),
                                  spellcheck: "false"});
      node.value = text;
      return {node, focus: node, read: () => node.value};
    }
    if (spec.kind === "object") {
      const parts = spec.fields.map((sub) => ({sub, c: control(sub, blank ? null : value[sub.name], `${id}.${sub.name}`)}));
      const node = h("fieldset", {id}, parts.map(({sub, c}) => [h("label", {for: c.node.id}, sub.name), c.node]));
      return {node, focus: parts.length ? parts[0].c.focus : node,
              read: () => Object.fromEntries(parts.map(({sub, c}) => [sub.name, c.read()]))};
    }
    const types = {date: "date", datetime: "datetime-local"};
    const node = h("input", {id, type: types[spec.kind] || "text", autocomplete: "off", spellcheck: "false",
                             inputmode: spec.kind === "integer" ? "numeric" : spec.kind === "number" ? "decimal" : null});
    node.value = blank ? "" : spec.kind === "datetime" ? String(value).slice(0, 16) : String(value);
    const numeric = spec.kind === "number" || spec.kind === "integer";
    // A number typed as one is sent as one; anything else as typed, for the schema to judge ("85k": its message).
    const read = () => {
      const typed = node.value.trim();
      if (typed === "") return null;
      return numeric && /^[-+]?\d+(\.\d+)?$/.test(typed) ? Number(typed) : node.value;
    };
    return {node, focus: node, read};
  }

  function card(f, i) {
    const current = i === state.field;
    const note = state.notes[f.name];
    const label = f.label;
    const node = h("div", {class: `field${current ? " current" : ""}${label ? " checked" : ""}`, id: `field-${i}`,
                           "data-name": f.name, tabindex: "-1", "aria-current": current ? "true" : null,
                           onclick: (e) => { if (!e.target.closest("button, form")) selectField(i); }},
      h("div", {class: "head"}, h("code", {class: "name"}, f.name),
        label ? h("span", {class: `state ${STATE_CLASS[label.state] || ""}`, title: `${label.source}, ${label.created_at}`},
                  label.state)
              : h("span", {class: "state"}, "not checked"),
        f.confidence !== null ? h("span", {class: "muted conf"}, `confidence ${number(f.confidence, 2)}`) : null),
      f.input.description ? h("div", {class: "desc"}, f.input.description) : null,
      h("div", {class: "value"}, shown(f.current)),
      label && label.state === "corrected" ? h("div", {class: "desc"}, "the model said: ", shown(f.value)) : null,
      f.evidence.length ? h("div", {class: "evidence"}, f.evidence.map((v) => h("span", {
        class: "chip", "data-status": v.status, title: v.quote ? `“${v.quote}”` : "nothing in the document supports it",
      }, (v.field !== f.name ? `${v.field.slice(f.name.length).replace(/^\./, "")} ` : "") + STATUS_LABELS[v.status] +
         (v.page ? ` · p. ${v.page}` : "")))) : null,
      state.editing && state.editing.name === f.name ? null : h("div", {class: "actions"},
        h("button", {type: "button", onclick: () => { selectField(i); accept(); }}, "Accept ", h("kbd", {}, "a")),
        h("button", {type: "button", onclick: () => { selectField(i); edit(); }}, "Edit ", h("kbd", {}, "e")),
        h("button", {type: "button", onclick: () => { selectField(i); absent(); }}, "Not in the document ",
          h("kbd", {}, "x"))),
      note ? h("p", {class: `note ${note.kind}`, role: "alert"}, note.text) : null);
    if (state.editing && state.editing.name === f.name) node.append(state.editing.form);
    return node;
  }

  // Each page read by OCR as its image (served by the app: img-src 'self'), with a box where each value was read;
  // boxes are placed through the CSSOM (the policy allows no inline style attribute), as fractions of the page.
  function scansPane(d) {
    if (!d.scans || !d.scans.length || d.html === null) return null;
    const clamp = (v) => Math.min(1, Math.max(0, v)) * 100;
    const figures = d.scans.map((scan) => {
      const boxes = scan.boxes.map((b) => {
        const [x0, y0, x1, y1] = b.bbox.map(clamp);
        const node = h("div", {class: "box", "data-field": b.field, "data-status": b.status,
                               title: `${b.field} (${b.status}): ${b.quote || ""}`});
        Object.assign(node.style, {left: `${x0}%`, top: `${y0}%`, width: `${x1 - x0}%`, height: `${y1 - y0}%`});
        return node;
      });
      const src = `/api/documents/${encodeURIComponent(d.doc_id)}/pages/${scan.page}.jpg`;
      const turned = scan.rotation ? `, turned ${scan.rotation}° to read` : "";
      return h("figure", {class: "scan", "data-page": scan.page},
        h("div", {class: "scanpage"}, h("img", {src, alt: `page ${scan.page} as read by OCR`}), boxes),
        h("figcaption", {}, `page ${scan.page}, read by OCR${turned}; ${boxes.length} value(s) boxed`));
    });
    return h("div", {class: "scans", id: "scans"}, figures);
  }

  function renderDoc() {
    const d = state.doc;
    const q = state.queue;
    const position = state.queue.documents.findIndex((item) => item.doc_id === d.doc_id);
    const text = d.html !== null ? h("div", {class: "doctext", id: "doctext"}) :
      h("p", {class: "why"}, `Text not shown: ${d.no_text}.`);
    if (d.html !== null) text.innerHTML = d.html;  // escaped and marked by the server (review.highlight)
    const scans = scansPane(d);
    root.replaceChildren(...[
      h("nav", {class: "topbar"},
        h("a", {href: "#/"}, "← queue ", h("kbd", {}, "u")),
        h("span", {class: "muted"}, position >= 0 ? `document ${position + 1} of ${q.documents.length} in the queue`
                                                  : "not in the queue's filter"),
        h("button", {type: "button", onclick: () => stepDoc(-1)}, "previous ", h("kbd", {}, "p")),
        h("button", {type: "button", onclick: () => stepDoc(1)}, "next ", h("kbd", {}, "n"))),
      docTitle(), docMeta(),
      d.read_from && d.read_from !== d.source_path ? h("p", {class: "meta"}, `read from ${d.read_from} (archived)`) : null,
      d.unplaced.length ? h("p", {class: "why"}, `Quotes no longer at their offsets: ${d.unplaced.join(", ")}`) : null,
      progressLine(q.progress),
      h("div", {class: "doc-grid"}, h("section", {class: "textpane"},
        scans ? h("div", {class: "ocr"}, scans, text) : text),
        h("aside", {class: "fields", id: "fields", "aria-label": "fields"}, d.fields.map(card))),
      keysBox([[["j", "↓"], "next field"], [["k", "↑"], "previous field"], [["a"], "accept"],
               [["e", "Enter"], "edit (Enter saves, Esc cancels)"], [["x"], "not in the document"],
               [["A"], "accept every unchecked field"], [["n", "]"], "next document"],
               [["p", "["], "previous document"], [["u", "Esc"], "queue"]])].filter(Boolean));
    if (state.banner) flash(state.banner);
    document.title = `${d.doc_id} · extractor review: ${q.schema}`;
    selectField(state.field, true);
  }

  function docTitle() {
    const d = state.doc;
    return h("h2", {id: "doc-title"}, h("span", {class: "id"}, d.doc_id), badge(d));
  }

  function docMeta() {
    const d = state.doc;
    const meta = [`status ${d.status}`, `grounded ${percent(d.grounded)}`,
                  `${d.checked} of ${d.fields.length} fields checked`];
    if (d.model) meta.push(`${d.model}, extracted ${when(d.extracted_at)}`);
    return h("p", {class: "meta", id: "doc-meta"}, meta.join(" · "));
  }

  function replaceCard(i) {
    const old = document.getElementById(`field-${i}`);
    if (old) old.replaceWith(card(state.doc.fields[i], i));
  }

  function selectField(i, initial) {
    const fields = state.doc.fields;
    const before = state.field;
    state.field = Math.max(0, Math.min(fields.length - 1, i));
    if (!initial && before !== state.field) {
      const previous = document.getElementById(`field-${before}`);
      if (previous) {
        previous.classList.remove("current");
        previous.removeAttribute("aria-current");
      }
    }
    const node = document.getElementById(`field-${state.field}`);
    node.classList.add("current");
    node.setAttribute("aria-current", "true");
    if (!state.editing) node.focus({preventScroll: true});
    scrollInto(document.getElementById("fields"), node);
    const name = fields[state.field].name;
    let first = null;
    for (const mark of document.querySelectorAll("#doctext mark")) {
      const field = mark.getAttribute("data-field").split(/[.[]/)[0];
      mark.classList.toggle("focus", field === name);
      if (field === name && !first) first = mark;
    }
    if (first) scrollInto(document.getElementById("doctext"), first, true);
    let firstBox = null;
    for (const box of document.querySelectorAll("#scans .box")) {
      const field = box.getAttribute("data-field").split(/[.[]/)[0];
      box.classList.toggle("focus", field === name);
      if (field === name && !firstBox) firstBox = box;
    }
    if (firstBox) scrollInto(document.getElementById("scans"), firstBox.closest("figure"));
  }

  function scrollInto(pane, node, middle) {
    if (!pane || !node) return;
    const top = node.offsetTop;
    const bottom = top + node.offsetHeight;
    if (middle) {
      if (top < pane.scrollTop || bottom > pane.scrollTop + pane.clientHeight) {
        pane.scrollTop = Math.max(0, top - pane.clientHeight / 3);
      }
    } else if (top < pane.scrollTop) {
      pane.scrollTop = top - 4;
    } else if (bottom > pane.scrollTop + pane.clientHeight) {
      pane.scrollTop = bottom - pane.clientHeight + 4;
    }
  }

  function currentField() {
    return state.doc.fields[state.field];
  }

  function edit() {
    const f = currentField();
    const c = control(f.input, f.current, `edit-${state.field}`);
    const form = h("form", {class: "edit", onsubmit: (e) => { e.preventDefault(); save(); }},
      f.input.kind === "list" ? h("div", {class: "desc"}, "one per line (or separated by ;)") : null,
      f.input.kind === "json" ? h("div", {class: "desc"}, "as JSON") : null,
      c.node,
      h("div", {class: "actions"}, h("button", {type: "submit"}, "Save ", h("kbd", {}, "Enter")),
        h("button", {type: "button", onclick: cancel}, "Cancel ", h("kbd", {}, "Esc"))));
    state.editing = {name: f.name, read: c.read, form};
    delete state.notes[f.name];
    replaceCard(state.field);
    selectField(state.field, true);
    c.focus.focus();
    if (c.focus.select && c.focus.tagName === "INPUT" && c.focus.type === "text") c.focus.select();
  }

  function cancel() {
    state.editing = null;
    replaceCard(state.field);
    selectField(state.field, true);
  }

  function save() {
    const f = currentField();
    store({values: {[f.name]: state.editing.read()}, seen: {[f.name]: f.version}}, [f.name]);
  }

  function accept() {
    const f = currentField();
    store({accept: [f.name], seen: {[f.name]: f.version}}, [f.name]);
  }

  function absent() {
    const f = currentField();
    store({values: {[f.name]: null}, seen: {[f.name]: f.version}}, [f.name]);
  }

  function acceptRest() {
    const rest = state.doc.fields.filter((f) => !f.label);
    if (!rest.length) return;
    store({accept: rest.map((f) => f.name), seen: Object.fromEntries(rest.map((f) => [f.name, f.version]))},
          rest.map((f) => f.name));
  }

  async function store(body, names) {
    const d = state.doc;
    const {status, data} = await api("POST", `/api/documents/${encodeURIComponent(d.doc_id)}/labels`, body);
    if (state.doc !== d) return;  // moved on meanwhile
    const index = (name) => d.fields.findIndex((f) => f.name === name);
    if (status === 200) {
      for (const [name, f] of Object.entries(data.fields)) {
        d.fields[index(name)] = f;
        if (names.length === 1) state.notes[name] = {kind: "stored", text: `stored as your label (${f.label.state})`};
        else delete state.notes[name];
      }
      d.checked = data.checked;
      d.reviewed = data.reviewed;
      state.queue.progress = data.progress;
      const item = state.queue.documents.find((x) => x.doc_id === d.doc_id);
      if (item) Object.assign(item, {checked: data.checked, reviewed: data.reviewed});
      state.editing = null;
      names.forEach((name) => replaceCard(index(name)));
      document.getElementById("progress").replaceWith(progressLine(data.progress));
      document.getElementById("doc-title").replaceWith(docTitle());
      document.getElementById("doc-meta").replaceWith(docMeta());
      if (d.reviewed) flash(`All ${d.fields.length} fields of ${d.doc_id} are checked: n for the next document.`);
      const next = d.fields.findIndex((f, i) => i > state.field && !f.label);
      selectField(names.length === 1 && next >= 0 ? next : state.field);
      return;
    }
    if (status === 422 && data.errors) {
      for (const [name, message] of Object.entries(data.errors)) state.notes[name] = {kind: "error", text: message};
      for (const name of Object.keys(data.errors)) {
        const i = index(name);
        if (i < 0) continue;
        const node = document.getElementById(`field-${i}`);
        const old = node.querySelector(".note");
        const note = h("p", {class: "note error", role: "alert"}, data.errors[name]);
        if (old) old.replaceWith(note); else node.insertBefore(note, node.querySelector("form.edit"));
      }
      if (state.editing) state.editing.form.querySelector("input, select, textarea").focus();
      return;
    }
    if (status === 409 && data.conflicts) {
      for (const [name, f] of Object.entries(data.fields)) d.fields[index(name)] = f;
      for (const [name, c] of Object.entries(data.conflicts)) {
        state.notes[name] = {kind: "conflict", text: `Changed since this page loaded: ${c.why}. The field shows it ` +
                             "now: check it, then accept or edit again. Nothing was stored."};
      }
      state.editing = null;
      names.forEach((name) => replaceCard(index(name)));
      selectField(state.field);
      return;
    }
    state.notes[names[0]] = {kind: "error", text: data.error || `error ${status}`};
    if (!state.editing) replaceCard(index(names[0]));
    flash(data.error || `error ${status}`);
  }

  function stepDoc(step) {
    const docs = state.queue.documents;
    const at = docs.findIndex((item) => item.doc_id === state.doc.doc_id);
    const next = at < 0 ? (step > 0 ? 0 : -1) : at + step;
    if (next < 0 || next >= docs.length) {
      flash(step > 0 ? "That was the last document of the queue (u: back to the queue)." : "That was the first document.");
      return;
    }
    openAt(next);
  }

  // -- keys -------------------------------------------------------------------------------------------

  document.addEventListener("keydown", (e) => {
    if (e.altKey || e.metaKey || e.isComposing) return;
    const target = e.target;
    const editingHere = target.closest && target.closest("form.edit");
    if (state.doc && editingHere) {
      if (e.key === "Escape") {
        e.preventDefault();
        cancel();
      } else if (e.key === "Enter" && (e.ctrlKey || target.tagName !== "TEXTAREA")) {
        e.preventDefault();
        save();
      }
      return;
    }
    if (e.ctrlKey) return;
    if (["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName)) {
      if (e.key === "Escape") target.blur();
      return;
    }
    const onButton = target.tagName === "BUTTON" || target.tagName === "A";
    const act = (fn) => { e.preventDefault(); fn(); };
    if (state.doc) {
      switch (e.key) {
        case "j": case "ArrowDown": return act(() => selectField(state.field + 1));
        case "k": case "ArrowUp": return act(() => selectField(state.field - 1));
        case "a": return act(accept);
        case "A": return act(acceptRest);
        case "e": return act(edit);
        case "Enter": return onButton ? undefined : act(edit);
        case "x": return act(absent);
        case "n": case "]": return act(() => stepDoc(1));
        case "p": case "[": return act(() => stepDoc(-1));
        case "u": case "Escape": return act(() => { location.hash = "#/"; });
        default: return undefined;
      }
    }
    if (!state.queue) return undefined;
    switch (e.key) {
      case "j": case "ArrowDown": return act(() => moveQueue(1));
      case "k": case "ArrowUp": return act(() => moveQueue(-1));
      case "Enter": case "o": return onButton ? undefined : act(() => openAt(state.selected));
      case "f": return act(() => document.getElementById("filter-field").focus());
      case "s": return act(() => document.getElementById("filter-status").focus());
      case "v": return act(() => document.getElementById("filter-evidence").focus());
      default: return undefined;
    }
  });

  // -- routes: #/ the queue, #/doc/<doc_id> a document ------------------------------------------------

  async function route() {
    const match = location.hash.match(/^#\/doc\/(.+)$/);
    if (match) {
      await openDoc(decodeURIComponent(match[1]));
      return;
    }
    state.doc = null;
    state.editing = null;
    state.banner = null;
    if (await loadQueue()) renderQueue();
  }

  window.addEventListener("hashchange", route);
  root.replaceChildren(h("h1", {}, `Review: ${schema}`), h("p", {class: "meta"}, "loading…"));
  route();
})();
