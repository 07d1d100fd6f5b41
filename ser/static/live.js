// Live recognition from the microphone (WebSocket /stream) and timelines of long recordings
// (POST /timeline), drawn in one timeline view. Served by the package; no build step, no CDN.
"use strict";
(() => {
  const LABELS = ["marah", "jijik", "takut", "bahagia", "netral", "sedih"];
  const root = document.getElementById("live");
  if (!root) return;
  root.innerHTML = `
    <h2>Emotion over time</h2>
    <p>Record from the microphone: each sentence gets its emotion once you pause. Or choose a long
    recording to see the emotion of each of its speech segments.</p>
    <button id="record" type="button">Record</button>
    <label>or a long recording: <input id="timeline-file" type="file" accept="audio/*,.wav,.mp3,.ogg,.flac"></label>
    <div id="live-status" role="status" aria-live="polite"></div>
    <div id="live-now" hidden>Now: <span id="live-label"></span> <span id="live-confidence"></span><div id="live-bars"></div></div>
    <div id="timeline" aria-label="timeline of speech segments"></div>
    <div id="timeline-axis"><span>0 s</span><span id="timeline-total"></span></div>
    <ol id="segments"></ol>`;
  const button = document.getElementById("record");
  const statusBox = document.getElementById("live-status");
  const strip = document.getElementById("timeline");
  const list = document.getElementById("segments");
  let segments = [];      // final segments, in order
  let partial = null;     // the open segment's latest update
  let span = 10;          // seconds the strip shows
  let recording = null;   // {ws, context, stream, node}

  function say(text, isError) {
    statusBox.textContent = text;
    statusBox.className = isError ? "error" : "";
  }

  function bars(probabilities) {
    const box = document.getElementById("live-bars");
    box.replaceChildren();
    for (const label of LABELS) {
      const p = probabilities[label] || 0;
      const row = document.createElement("div");
      row.className = "row";
      row.dataset.label = label;
      row.innerHTML = `<span class="name">${label}</span><div class="track"><div class="bar" style="width:${(100 * p).toFixed(1)}%"></div></div><span class="value">${(100 * p).toFixed(1)} %</span>`;
      box.appendChild(row);
    }
  }

  function showNow(event) {
    document.getElementById("live-now").hidden = false;
    const label = document.getElementById("live-label");
    label.textContent = event.emotion;
    label.dataset.label = event.emotion;
    label.className = event.type === "partial" ? "partial" : "";
    document.getElementById("live-confidence").textContent = `(${(100 * event.confidence).toFixed(1)} %, ${event.start.toFixed(1)}-${event.end.toFixed(1)} s${event.type === "partial" ? ", so far" : ""})`;
    bars(event.probabilities);
  }

  function block(event, isPartial) {
    const div = document.createElement("div");
    div.className = `segment seg-${event.emotion}` + (isPartial ? " partial" : "");
    div.style.left = `${(100 * event.start / span).toFixed(3)}%`;
    div.style.width = `${(100 * (event.end - event.start) / span).toFixed(3)}%`;
    div.textContent = event.emotion;
    div.title = `${event.start.toFixed(2)}-${event.end.toFixed(2)} s: ${event.emotion} (${(100 * event.confidence).toFixed(1)} %)`;
    Object.assign(div.dataset, {label: event.emotion, start: event.start, end: event.end});
    return div;
  }

  function draw(now) {
    const last = Math.max(now || 0, partial ? partial.end : 0, ...segments.map((s) => s.end));
    while (last > span) span *= 2;
    strip.replaceChildren(...segments.map((s) => block(s, false)), ...(partial ? [block(partial, true)] : []));
    document.getElementById("timeline-total").textContent = `${span} s`;
  }

  function addSegment(event) {
    segments.push(event);
    const item = document.createElement("li");
    item.className = "segment-row";
    item.dataset.label = event.emotion;
    item.textContent = `${event.start.toFixed(2)}-${event.end.toFixed(2)} s: ${event.emotion} (${(100 * event.confidence).toFixed(1)} %)`;
    list.appendChild(item);
  }

  function reset() {
    segments = [];
    partial = null;
    span = 10;
    list.replaceChildren();
    document.getElementById("live-now").hidden = true;
    draw(0);
  }

  async function start() {
    reset();
    say("Starting the microphone ...", false);
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({audio: {channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false}});
    } catch (err) {
      say("No microphone: " + err.message, true);
      return;
    }
    const context = new AudioContext();
    await context.audioWorklet.addModule("static/pcm-worklet.js");
    const source = context.createMediaStreamSource(stream);
    const node = new AudioWorkletNode(context, "pcm-chunker");
    const url = new URL(`stream?rate=${context.sampleRate}`, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    recording = {ws, context, stream, node, source};
    ws.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (event.type === "ready") {
        say(`Recording (${context.sampleRate} Hz) ... speak, pause between sentences.`, false);
        node.port.onmessage = (m) => { if (ws.readyState === WebSocket.OPEN) ws.send(m.data); };
        source.connect(node);
      } else if (event.type === "partial") {
        partial = event;
        showNow(event);
        draw(event.end);
      } else if (event.type === "segment") {
        partial = null;
        addSegment(event);
        showNow(event);
        draw(event.end);
      } else if (event.type === "end") {
        say(`Stopped: ${event.seconds.toFixed(1)} s recorded, ${segments.length} speech segments.`, false);
      } else if (event.type === "error") {
        say("Error: " + event.detail, true);
      }
    };
    ws.onclose = () => { release(); button.textContent = "Record"; };
    ws.onerror = () => say("The connection to the server failed.", true);
    button.textContent = "Stop";
  }

  function release() {
    if (!recording) return;
    recording.stream.getTracks().forEach((t) => t.stop());
    recording.source.disconnect();
    recording.context.close();
    recording = null;
  }

  function stop() {
    if (!recording) return;
    const ws = recording.ws;
    release();
    if (ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({type: "stop"}));
      say("Finishing the last segment ...", false);
    }
    button.textContent = "Record";
  }

  button.addEventListener("click", () => (recording ? stop() : start()));

  document.getElementById("timeline-file").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    reset();
    say("Analysing " + file.name + " ...", false);
    const form = new FormData();
    form.append("file", file);
    try {
      const response = await fetch("timeline", {method: "POST", body: form});
      const body = await response.json().catch(() => ({detail: "the server sent no JSON (HTTP " + response.status + ")"}));
      if (!response.ok) {
        say("Error " + response.status + ": " + body.detail, true);
        return;
      }
      body.segments.forEach(addSegment);
      draw(body.duration);
      say(`${file.name}: ${body.segments.length} speech segments in ${body.duration.toFixed(1)} s`, false);
    } catch (err) {
      say("Request failed: " + err, true);
    }
  });
  draw(0);
})();
