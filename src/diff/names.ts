/**
 * Names the compiler invents differ between a pre and a post build of the same source
 * without meaning anything: `foo.isra.0` may become `foo.isra.1`, a static local `count.3`
 * becomes `count.7`, and the labels `CSWTCH.12`, `__func__.5`, `__UNIQUE_ID_ddebug123`
 * are renumbered whenever code is added above them, and so are `__BTF_ID__func__name__12`. Correlation works on a canonical form
 * with every such number replaced by `N`.
 */

/** `foo.isra.0` -> `foo.isra.N`; `__UNIQUE_ID_ddebug123` -> `__UNIQUE_ID_ddebugN`. */
export function canonicalName(name: string): string {
  let canonical = name.replace(/\.\d+(?=\.|$)/g, '.N');
  const unique = /^(__UNIQUE_ID_\D*?)\d+$/.exec(canonical);
  if (unique?.[1]) canonical = `${unique[1]}N`;
  // BTF_ID(func, name) is `__BTF_ID__func__name__` plus __COUNTER__ (include/linux/btf_ids.h).
  const btf = /^(__BTF_ID__\w*?__)\d+$/.exec(canonical);
  if (btf?.[1]) canonical = `${btf[1]}N`;
  return canonical;
}

/** Whether the compiler made this name up with a counter (it carries no meaning of its own). */
export function isNumberedLabel(name: string): boolean {
  return canonicalName(name) !== name;
}

/** Compiler clone suffixes: `.isra.N`, `.constprop.N`, `.part.N`, `.cold`, `.localalias`. */
const CLONE_SUFFIX = /\.(isra|constprop|part|cold|localalias|lto_priv)(\.\d+)?/g;

/** The source function a compiler piece belongs to: `foo.constprop.0.isra.0` -> `foo`. */
export function sourceFunctionName(name: string): string {
  return name.replace(CLONE_SUFFIX, '');
}
