// Projects: the caller's projects with their role; a new project from the bundled sample or a pasted config.

import { api, reportError } from "../api";
import { clearErrors, h, mount } from "../dom";
import type { ProjectSummary } from "../types";
import { field, link, section, select, table, when } from "../ui";

function createForm(): HTMLFormElement {
  const name = h("input", { name: "name", id: "project-name", required: "", maxlength: "200" });
  const source = select("source", [["template", "The bundled NC Landsat sample"], ["config", "A config I paste"]]);
  source.id = "project-source";
  const config = h("textarea", { name: "config", id: "project-config", rows: "14", spellcheck: "false",
    placeholder: "name: my-project\nimagery: …" });
  const configField = field("Config (eoengine.yaml)", config,
    "Paths in it are relative to the project folder; Ctrl+Enter creates the project.");
  const show = (): void => {
    configField.hidden = source.value !== "config";
  };
  source.addEventListener("change", show);
  show();
  const submit = h("button", { type: "submit", class: "primary" }, "Create project");
  const form = h("form", { class: "card", id: "create-project" }, field("Name", name),
    field("Start from", source), configField, submit);
  config.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors();
    const body = source.value === "config"
      ? { name: name.value, config: config.value }
      : { name: name.value, template: "nc-landsat" };
    submit.disabled = true;
    api<ProjectSummary>("/projects", { json: body })
      .then((made) => {
        location.hash = `#/projects/${encodeURIComponent(made.slug)}`;
      })
      .catch(reportError)
      .finally(() => {
        submit.disabled = false;
      });
  });
  return form;
}

/** The projects page. */
export async function projectsPage(root: HTMLElement): Promise<void> {
  const projects = await api<ProjectSummary[]>("/projects");
  const rows = projects.map((p) => [
    link(`#/projects/${encodeURIComponent(p.slug)}`, p.name), h("code", {}, p.slug), p.role ?? "site admin",
    when(p.created_at),
  ]);
  mount(root, h("h1", {}, "Projects"),
    section("Your projects", "project-list", table(["Name", "Slug", "Your role", "Created"], rows,
      "You are in no project yet: create one below, or ask a project's admin to add you.")),
    section("New project", "new-project", createForm()));
}
