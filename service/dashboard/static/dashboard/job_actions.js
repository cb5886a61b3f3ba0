// The job page's actions: cancel, delete (once finished, after a confirmation), download the
// model and the forecasts (fetched with the token, saved as files), and copy the curl command
// that submits the job again.

import { api, fetchFile } from "./api.js";
import { saveBlob } from "./dom.js";
import { TERMINAL, shortId } from "./format.js";
import { batchForecasts, forecastsCsv } from "./forecast.js";
import { reproduceCommand } from "./reproduce.js";

const $ = (id) => document.getElementById(id);

export class JobActions {
  // jobId: the page's job; onJob: called with the job document an action answers.
  constructor(jobId, { onJob }) {
    this.jobId = jobId;
    this.path = `/v1/jobs/${encodeURIComponent(jobId)}`;
    this.onJob = onJob;
    this.job = null;
    const on = (id, action) => $(id).addEventListener("click", () => this.run(id, action));
    on("cancel", () => this.cancel());
    on("delete", () => this.askToDelete(true));
    on("delete-keep", () => this.askToDelete(false));
    on("delete-confirm", () => this.remove());
    on("download-model", () => this.downloadModel());
    on("download-forecast", () => this.downloadForecast());
    on("copy-curl", () => this.copyCurl());
  }

  // Which actions the job's state allows.
  show(job) {
    this.job = job;
    const finished = TERMINAL.includes(job.status);
    $("cancel").hidden = finished || job.cancel_requested;
    $("delete").hidden = !finished || !$("delete-ask").hidden;
    $("download-model").hidden = job.status !== "succeeded";
    $("download-forecast").hidden = job.status !== "succeeded";
    if (!finished) $("delete-ask").hidden = true;
  }

  // One action at a time per button; its error shown beside the buttons.
  async run(id, action) {
    const button = $(id);
    button.disabled = true;
    $("action-error").hidden = true;
    try {
      await action();
    } catch (exc) {
      $("action-error").textContent = exc.message;
      $("action-error").hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  async cancel() {
    this.onJob((await api(`${this.path}/cancel`, { method: "POST" })).data);
  }

  askToDelete(asking) {
    $("delete-ask").hidden = !asking;
    $("delete").hidden = asking;
    if (asking) $("delete-keep").focus();
  }

  async remove() {
    await api(this.path, { method: "DELETE" });
    window.location.assign("/");
  }

  async downloadModel() {
    const file = await fetchFile(`${this.path}/model`,
      { fallback: `bptt-${this.jobId}.safetensors` });
    saveBlob(file.blob, file.filename);
    this.say(`Saved ${file.filename} (${file.blob.size.toLocaleString("en")} bytes).`);
  }

  async downloadForecast() {
    const file = await fetchFile("/v1/forecasts", { method: "POST", body: { job_id: this.jobId },
      accept: "text/csv" });
    let blob = file.blob;
    if (file.status === 202) {  // many series: a batch a worker answers, as JSON
      const batch = JSON.parse(await blob.text());
      blob = new Blob([forecastsCsv(await batchForecasts(batch.id))], { type: "text/csv" });
    }
    const name = `forecast-${shortId(this.jobId)}.csv`;
    saveBlob(blob, name);
    this.say(`Saved ${name}.`);
  }

  async copyCurl() {
    const { command, note } = await reproduceCommand(this.job);
    const shown = $("curl-command");
    shown.textContent = command;
    $("curl").hidden = false;
    try {
      await navigator.clipboard.writeText(command);
      this.say(`Copied. ${note} It reads the token from $BPTT_TOKEN.`);
    } catch {
      // No clipboard here (an insecure origin, or permission refused): select it to copy.
      window.getSelection().selectAllChildren(shown);
      this.say(`Select and copy it below. ${note} It reads the token from $BPTT_TOKEN.`);
    }
  }

  say(text) {
    $("action-note").textContent = text;
  }
}
