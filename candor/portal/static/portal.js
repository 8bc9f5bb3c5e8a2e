// Candor portal: download with a progress bar. Without script the link
// downloads the zip directly; with it, the zip is fetched, the bar filled from
// Content-Length, and the file saved from memory.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var link = document.getElementById("download");
  var bar = document.getElementById("progress");
  var text = document.getElementById("progress-text");
  if (!link || !bar || !window.fetch || !window.ReadableStream) { return; }
  link.addEventListener("click", function (ev) {
    ev.preventDefault();
    text.textContent = "Preparing your data...";
    fetch(link.href, { credentials: "same-origin" }).then(function (resp) {
      if (!resp.ok) { throw new Error("the server answered " + resp.status); }
      var total = Number(resp.headers.get("Content-Length")) || 0;
      var name = "candor-my-data.zip";
      var disp = resp.headers.get("Content-Disposition") || "";
      var m = /filename="([^"]+)"/.exec(disp);
      if (m) { name = m[1]; }
      var reader = resp.body.getReader();
      var chunks = [];
      var got = 0;
      function pump() {
        return reader.read().then(function (r) {
          if (r.done) { return; }
          chunks.push(r.value);
          got += r.value.length;
          if (total) {
            bar.value = Math.floor(100 * got / total);
            text.textContent = bar.value + "% (" + got + " of " + total + " bytes)";
          }
          return pump();
        });
      }
      return pump().then(function () {
        var blob = new Blob(chunks, { type: "application/zip" });
        var a = document.createElement("a");
        a.href = URL.createObjectURL(blob);
        a.download = name;
        document.body.appendChild(a);
        a.click();
        bar.value = 100;
        text.textContent = "Done: " + got + " bytes saved as " + name;
        text.setAttribute("data-done", "1");
      });
    }).catch(function (err) { text.textContent = "Download failed: " + err.message; });
  });
});
