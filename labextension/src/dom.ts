/** A tiny DOM builder: h('div', {class: 'x', onclick: f}, child, 'text'). */

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, any>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs | null = null, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) {
        continue;
      }
      if (key.startsWith('on') && typeof value === 'function') {
        el.addEventListener(key.slice(2).toLowerCase(), value);
      } else if (key === 'class') {
        el.className = String(value);
      } else if (key === 'style' && typeof value === 'object') {
        Object.assign(el.style, value);
      } else if (key === 'checked' || key === 'selected') {
        // the first state is also the default one: a form's reset() comes back to it
        (el as any)[key] = value;
        (el as any)[key === 'checked' ? 'defaultChecked' : 'defaultSelected'] = value;
      } else if (key === 'value' || key === 'disabled') {
        (el as any)[key] = value;
      } else if (key === 'dataset') {
        Object.assign(el.dataset, value);
      } else {
        el.setAttribute(key, value === true ? '' : String(value));
      }
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    el.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace an element's children, keeping the focus on the element with the same data-focus-key. */
export function replaceChildren(parent: HTMLElement, ...children: (Child | Child[])[]): void {
  const active = document.activeElement as HTMLElement | null;
  const key = active && parent.contains(active) ? active.dataset.focusKey : undefined;
  parent.replaceChildren();
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
    }
  }
  if (key) {
    const again = parent.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(key)}"]`);
    again?.focus();
  }
}

/**
 * Make `parent`'s element children exactly `wanted`, in order, without detaching an element
 * that is already in its place: a button under the pointer stays in the page, so a press
 * that spans an update still makes a click.
 */
export function patchChildren(parent: HTMLElement, wanted: HTMLElement[]): void {
  const keep = new Set(wanted);
  for (const el of Array.from(parent.children)) {
    if (!keep.has(el as HTMLElement)) {
      el.remove();
    }
  }
  let cursor = parent.firstElementChild;
  for (const el of wanted) {
    if (el === cursor) {
      cursor = cursor.nextElementSibling;
    } else {
      parent.insertBefore(el, cursor);
    }
  }
}

/** An SVG element (h() makes HTML ones): svg('path', {d: 'M0 0L1 1', class: 'x'}). */
export function svg(tag: string, attrs: Record<string, string | number | null | undefined> = {}, ...children: (SVGElement | null)[]): SVGElement {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) {
      el.setAttribute(key, String(value));
    }
  }
  for (const child of children) {
    if (child) {
      el.appendChild(child);
    }
  }
  return el;
}
