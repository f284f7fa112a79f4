// DOM helpers. Text only ever goes in through textContent, so nothing a
// customer or an agent typed can become markup.

/**
 * Creates an element. `options` may set `className`, `text` (as textContent),
 * `attrs` (attributes set with setAttribute), `data` (dataset entries),
 * `on` (event listeners) and any plain property such as `type` or `disabled`.
 */
export function el(tag, options = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined || value === null) {
      continue;
    }
    if (key === 'className') {
      node.className = value;
    } else if (key === 'text') {
      node.textContent = String(value);
    } else if (key === 'attrs') {
      for (const [name, attr] of Object.entries(value)) {
        node.setAttribute(name, attr);
      }
    } else if (key === 'data') {
      Object.assign(node.dataset, value);
    } else if (key === 'on') {
      for (const [type, listener] of Object.entries(value)) {
        node.addEventListener(type, listener);
      }
    } else {
      node[key] = value;
    }
  }
  append(node, children);
  return node;
}

/** Appends nodes and strings (as text nodes), skipping null, undefined and false. */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    parent.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return parent;
}

/** Removes every child of `node`. */
export function clear(node) {
  while (node.firstChild) {
    node.removeChild(node.firstChild);
  }
  return node;
}

/** Replaces the children of `node`. */
export function replaceChildren(node, ...children) {
  clear(node);
  return append(node, children);
}
