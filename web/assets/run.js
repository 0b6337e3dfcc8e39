// The run page (placeholder until it is written).
import { h } from "./ui.js";

export function mount(root) {
  root.append(h("h1", {}, "run"));
  return null;
}
