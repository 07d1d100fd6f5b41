"use strict";
// The upload page's list of recent predictions (GET /history) with a Delete button per row
// (DELETE /history/{id}). It refreshes after each answer: the page sends "ser:prediction".
// With `ser serve --store none` GET /history answers 404 and the section stays hidden.
// section#history's data-state says how the last refresh ended: ok, off or error.
(() => {
  const LIMIT = 10;
  const section = document.getElementById("history");
  const rows = document.getElementById("history-rows");
  const note = document.getElementById("history-status");
  if (!section || !rows || !note) return;

  function say(text, isError) {
    note.textContent = text;
    note.className = isError ? "error" : "";
  }

  function cell(text, title) {
    const td = document.createElement("td");
    td.textContent = text;
    if (title) td.title = title;
    return td;
  }

  function row(record) {
    const tr = document.createElement("tr");
    tr.dataset.id = record.id;
    tr.dataset.label = record.emotion;
    const when = new Date(record.time);
    tr.append(
      cell(when.toLocaleString(), record.time),
      cell(record.file_name || "(no name)", "sha256 " + record.sha256),
      cell(record.emotion),
      cell((100 * record.confidence).toFixed(1) + " %"),
    );
    const action = document.createElement("td");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "delete";
    button.textContent = "Delete";
    button.title = "delete this prediction" + (record.storage_path ? " and its recording" : "");
    button.addEventListener("click", () => remove(record, tr, button));
    action.appendChild(button);
    tr.appendChild(action);
    return tr;
  }

  async function refresh() {
    let response;
    try {
      response = await fetch("history?limit=" + LIMIT);
    } catch (err) {
      say("History unavailable: " + err, true);
      return;
    }
    if (response.status === 404) {  // the server keeps no history
      section.hidden = true;
      section.dataset.state = "off";
      return;
    }
    const body = await response.json().catch(() => ({detail: "HTTP " + response.status}));
    section.hidden = false;
    if (!response.ok) {
      section.dataset.state = "error";
      say("History unavailable: " + body.detail, true);
      return;
    }
    rows.replaceChildren(...body.items.map(row));
    section.dataset.state = "ok";
    say(body.items.length ? "" : "No predictions yet.", false);
  }

  async function remove(record, tr, button) {
    button.disabled = true;
    try {
      const response = await fetch("history/" + encodeURIComponent(record.id), {method: "DELETE"});
      const body = await response.json().catch(() => ({detail: "HTTP " + response.status}));
      if (!response.ok) {
        say("Could not delete: " + body.detail, true);
        button.disabled = false;
        return;
      }
      tr.remove();
      say("Deleted " + (record.file_name || record.id) + (body.audio_removed ? " and its recording" : ""), false);
    } catch (err) {
      say("Could not delete: " + err, true);
      button.disabled = false;
    }
  }

  document.addEventListener("ser:prediction", refresh);
  refresh();
})();
