// A tiny element builder: h("button", { class: "x", onclick }, "text", child).
type Attrs = Record<string, string | number | boolean | undefined | ((ev: any) => void)>;
export type Child = Node | string | false | null | undefined | Child[];

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v);
    else if (k === "value") (el as HTMLInputElement).value = String(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === false || c === null || c === undefined) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  }
}

/** Replaces el's children. */
export function render(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** The value of a form's named input, trimmed. */
export function field(form: HTMLFormElement, name: string): string {
  return ((form.elements.namedItem(name) as HTMLInputElement | null)?.value ?? "").trim();
}

/**
 * Replaces el's children only when the new ones look different, so that a
 * refresh that changes nothing does not replace the element under the
 * user's pointer (a click spanning the swap would be lost).
 */
export function update(el: Element, ...children: Child[]): void {
  const next = document.createElement("div");
  append(next, children);
  if (next.innerHTML !== el.innerHTML) el.replaceChildren(...next.childNodes);
}

/**
 * Makes parent's children the rows, given as fresh elements, keeping the
 * element already there for each key (attribute keyAttr) and updating its
 * class and contents: a row under the pointer survives a refresh.
 */
export function reconcile(parent: Element, rows: HTMLElement[], keyAttr: string): void {
  const old = new Map<string, Element>();
  for (const c of parent.children) {
    const k = c.getAttribute(keyAttr);
    if (k !== null) old.set(k, c);
  }
  const next = rows.map((row) => {
    const prev = old.get(row.getAttribute(keyAttr) ?? "");
    if (!prev) return row;
    prev.className = row.className;
    update(prev, ...row.childNodes);
    return prev;
  });
  next.forEach((el, i) => {
    if (parent.children[i] !== el) parent.insertBefore(el, parent.children[i] ?? null);
  });
  while (parent.children.length > next.length) parent.lastElementChild!.remove();
}
