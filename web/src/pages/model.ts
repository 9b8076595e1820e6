// A registered model: its aliases (reviewers and admins set, move and remove them), its versions with
// their runs and package metadata (task, bands, classes with colours, resolution), and each version's lineage.

import { api, reportError } from "../api";
import { clearErrors, h, mount } from "../dom";
import { lineageDisclosure, lineagePanel } from "../lineage";
import { may } from "../roles";
import type { Params } from "../router";
import { currentUser } from "../session";
import type { ModelDetail, ModelVersion, Overview, PackageSummary } from "../types";
import { button, field, keyValues, link, num, section, select, table, when } from "../ui";

function classList(pkg: PackageSummary): HTMLElement {
  return h("ul", { class: "class-list", "aria-label": "Classes" }, ...pkg.classes.map((c) =>
    h("li", { "data-class": c.name }, h("span", { class: "swatch", style: `background:${c.color}` }), c.name)));
}

function packageFacts(pkg: PackageSummary | null): HTMLElement {
  if (!pkg) return h("span", { class: "muted" }, "package not on this server");
  return keyValues([["Task", pkg.task], ["Architecture", pkg.model], ["Bands", pkg.bands.join(", ")],
    ["Classes", classList(pkg)], ["Resolution", pkg.resolution === null ? "—" : `${num(pkg.resolution)} m`],
    ["Patch size", `${pkg.patch_size} px`]]);
}

function versionRows(slug: string, model: ModelDetail): (HTMLElement | string)[][] {
  const base = `#/projects/${encodeURIComponent(slug)}`;
  return model.versions.map((v: ModelVersion) => {
    const run = v.run_id ? model.runs[v.run_id] : undefined;
    const runCell = v.run_id ? link(`${base}/runs/${encodeURIComponent(v.run_id)}`, run?.name || v.run_id.slice(0, 12)) : "—";
    return [h("strong", { "data-version": v.version }, `v${v.version}`),
      h("span", { class: "version-aliases" }, v.aliases.join(", ") || "—"), runCell, packageFacts(v.package),
      h("span", {}, when(v.created_at))];
  });
}

function aliasForm(slug: string, model: ModelDetail, reload: () => void): HTMLFormElement {
  const path = (alias: string): string =>
    `/projects/${encodeURIComponent(slug)}/models/${encodeURIComponent(model.name)}/aliases/${encodeURIComponent(alias)}`;
  const alias = h("input", { name: "alias", id: "alias-name", required: "", value: "champion", autocomplete: "off" });
  const version = select("version", model.versions.map((v) => [v.version, `v${v.version}`]), model.versions[0]?.version);
  version.id = "alias-version";
  const form = h("form", { class: "inline-form", id: "set-alias" }, field("Alias", alias, "e.g. champion, candidate"),
    field("Version", version), h("button", { type: "submit" }, "Set alias"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors();
    api(path(alias.value.trim()), { method: "PUT", json: { version: Number(version.value) } }).then(reload, reportError);
  });
  return form;
}

function aliasRows(slug: string, model: ModelDetail, review: boolean, reload: () => void): HTMLElement[][] {
  const path = (alias: string): string =>
    `/projects/${encodeURIComponent(slug)}/models/${encodeURIComponent(model.name)}/aliases/${encodeURIComponent(alias)}`;
  return Object.entries(model.aliases).map(([alias, version]) => {
    const row = [h("code", { "data-alias": alias }, alias), h("span", {}, `v${version}`)];
    if (review) {
      row.push(button("Remove", () => {
        clearErrors();
        api(path(alias), { method: "DELETE" }).then(reload, reportError);
      }, { class: "danger remove-alias", "data-alias": alias, "aria-label": `Remove alias ${alias}` }));
    }
    return row;
  });
}

/** The model page; `?version=N` opens that version's lineage first. */
export async function modelPage(root: HTMLElement, params: Params, query: URLSearchParams): Promise<void> {
  const slug = params.slug;
  const project = `/projects/${encodeURIComponent(slug)}`;
  const [user, overview, model] = await Promise.all([currentUser(), api<Overview>(project),
    api<ModelDetail>(`${project}/models/${encodeURIComponent(params.name)}`)]);
  const review = may(overview.role, "review", user.is_admin);
  const reload = (): void => void modelPage(root, params, query).catch(reportError);
  const wanted = query.get("version") ?? model.versions[0]?.version;
  const lineages = model.versions.map((v) => v.version === wanted
    ? h("div", { class: "lineage-open" }, h("h3", {}, `v${v.version}`), lineagePanel(slug, `model:${model.name}/${v.version}`))
    : lineageDisclosure(slug, `model:${model.name}/${v.version}`, `Lineage of v${v.version}`));
  mount(root,
    h("div", { class: "title-row" }, h("h1", {}, `Model ${model.name}`), link(`#${project}`, "Back to the project")),
    keyValues([["Versions", String(model.versions.length)], ["Updated", when(model.updated_at)],
      ["Reference", h("code", {}, `models:/${model.name}@ALIAS or models:/${model.name}/VERSION`)]]),
    section("Aliases", "aliases", table(review ? ["Alias", "Version", ""] : ["Alias", "Version"],
      aliasRows(slug, model, review, reload), "No alias yet."), review && model.versions.length ? aliasForm(slug, model, reload) : null),
    section("Versions", "versions", table(["Version", "Aliases", "Run", "Package", "Registered"], versionRows(slug, model),
      "No version.")),
    section("Lineage", "lineage", ...lineages));
}
