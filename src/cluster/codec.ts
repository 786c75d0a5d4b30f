// Stanzas between nodes travel as JSON trees ([name, attrs, children]) rather than XML text:
// no parser on the receiving side, and the tree arrives exactly as the sender had it.
import { Element, type Node } from '../xml/element.js';

export type WireNode = string | [name: string, attrs: Record<string, string>, children: WireNode[]];

export function toWire(el: Element): WireNode {
  return [el.name, el.attrs, el.children.map((c) => (typeof c === 'string' ? c : toWire(c)))];
}

/** Rebuilds an element; throws on anything that is not a tree toWire could have made. */
export function fromWire(node: unknown): Element {
  const el = nodeFromWire(node, 0);
  if (typeof el === 'string') throw new Error('expected an element, got text');
  return el;
}

function nodeFromWire(node: unknown, depth: number): Node {
  if (typeof node === 'string') return node;
  if (depth > 64 || !Array.isArray(node) || node.length !== 3) throw new Error('malformed element');
  const [name, attrs, children] = node as unknown[];
  if (typeof name !== 'string' || !attrs || typeof attrs !== 'object' || Array.isArray(attrs) || !Array.isArray(children)) throw new Error('malformed element');
  const cleanAttrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs)) if (typeof v === 'string') cleanAttrs[k] = v;
  return new Element(name, cleanAttrs, children.map((c) => nodeFromWire(c, depth + 1)));
}
