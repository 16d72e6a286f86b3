"""DNN -> accelerator: layers to GEMMs, folding, int8 quantization (not built yet)."""

__all__: list[str] = []
