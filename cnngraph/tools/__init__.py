"""Reports and checks built on a compiled model: summary, per-layer profile, gradient check,
layering check. They sit above the runtime; nothing below imports them."""
