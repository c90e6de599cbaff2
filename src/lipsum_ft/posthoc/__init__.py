"""Post-hoc robustness on state dicts: WiSE weight interpolation and TPGM projection."""
