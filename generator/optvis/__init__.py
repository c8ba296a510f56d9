"""Feature visualization, split as Lucid and Lucent split it: image
parameterizations (param), transformation robustness (transforms), update
rules (optimizers), methods as presets of those (methods), the batched render
loop (engine), and the seed's original loop (seed_loop)."""
