// The page's only script: post the prompt, follow the drawing's Server-Sent Events, show each image by URL.
// Text from the server is only ever set with textContent (never innerHTML), so a prompt cannot inject markup.
"use strict";

// What the page has displayed, in order (tests and debugging read it): {kind, index, src, naturalWidth}.
window.imagegenShown = [];

let currentImageId = null; // the handle of the final image shown: what "edit the image shown" sends
let source = null;         // the open EventSource, if any

const $ = (id) => document.getElementById(id);

function setStatus(text) { $("status").textContent = text; }

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

function showImage(url, kind, index) {
  const img = $("image");
  img.onload = () => {
    window.imagegenShown.push({kind, index, src: img.currentSrc, naturalWidth: img.naturalWidth});
    img.dataset.kind = kind; // set once the pixels are on screen
  };
  img.hidden = false;
  img.src = url;
}

async function draw(event) {
  event.preventDefault();
  if (source) source.close();
  showError("");
  const body = {prompt: $("prompt").value};
  if ($("edit").checked && currentImageId) body.image_id = currentImageId;
  setStatus("Sending...");
  $("draw").disabled = true;
  let answer;
  try {
    const response = await fetch("/api/draw", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
    });
    answer = await response.json();
    if (!response.ok) throw new Error(answer.error || `the server answered ${response.status}`);
  } catch (err) {
    showError(err.message);
    setStatus("");
    $("draw").disabled = false;
    return;
  }
  follow(answer.events);
}

function follow(url) {
  const events = new EventSource(url);
  source = events;
  const finish = () => {
    events.close();
    if (source === events) source = null;
    $("draw").disabled = false;
  };
  events.addEventListener("progress", (e) => {
    const stage = JSON.parse(e.data).stage;
    setStatus(stage === "generating" ? "Drawing..." : `Working (${stage})...`);
  });
  events.addEventListener("partial", (e) => {
    const partial = JSON.parse(e.data);
    setStatus(`Preview ${partial.index + 1}...`);
    showImage(partial.url, "partial", partial.index);
  });
  events.addEventListener("final", (e) => {
    finish(); // first: nothing more will come, whatever happens while showing the result
    const result = JSON.parse(e.data);
    const image = result.images[0];
    showImage(image.url, "final", null);
    currentImageId = image.id;
    $("edit").disabled = false;
    $("caption").textContent = `${image.id} (${image.width}x${image.height})` +
      (image.input_ids.length ? `, edited from ${image.input_ids[0]}` : "") +
      (image.revised_prompt ? `: ${image.revised_prompt}` : "");
    setStatus("Done.");
  });
  events.addEventListener("failed", (e) => {
    finish();
    showError(JSON.parse(e.data).error); // the agent-facing message: what went wrong and what to do next
    setStatus("");
  });
  events.onerror = () => {
    // The browser reconnects by itself (with Last-Event-ID); the drawing goes on on the server meanwhile.
    if (events.readyState === EventSource.CONNECTING) setStatus("Connection lost, reconnecting...");
  };
}

document.addEventListener("DOMContentLoaded", () => $("draw-form").addEventListener("submit", draw));
