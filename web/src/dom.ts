// Small DOM helpers shared by the pages: build elements, show errors to the user.

type Child = Node | string | null | undefined | false;

/** Create an element with attributes (`class`, `aria-*`, `data-*`, …) and children (strings become text). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** Replace everything inside `root` with `children`. */
export function mount(root: HTMLElement, ...children: Child[]): void {
  root.replaceChildren();
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    root.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
}

/** Show a problem (and how to fix it) in the page's alert region until the user dismisses it. */
export function showError(problem: string, fix = ""): void {
  const alerts = document.getElementById("alerts");
  if (!alerts) return;
  const close = h("button", { type: "button", class: "alert-close", "aria-label": "Dismiss" }, "×");
  const box = h("div", { class: "alert" }, h("strong", {}, problem), fix ? h("span", { class: "alert-fix" }, fix) : null, close);
  close.addEventListener("click", () => box.remove());
  alerts.append(box);
}

/** Remove every alert (a new page starts clean). */
export function clearErrors(): void {
  document.getElementById("alerts")?.replaceChildren();
}
