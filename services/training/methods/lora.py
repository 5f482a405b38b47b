"""LoRA, rsLoRA, DoRA and QLoRA (LoRA over a 4- or 8-bit bitsandbytes base) through PEFT."""

from __future__ import annotations

from shared.schemas.training import TrainJobConfig

from ._common import load_base


def load_for_training(config: TrainJobConfig, source: str):  # type: ignore[no-untyped-def]
    """Load the base (quantized when `quantization_bit` is set) and wrap it with fresh LoRA adapters."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if config.quantization_bit is None:
        model = load_base(config, source)
    else:
        model = load_base(config, source, quantization_config=quantization_config(config), device_map=_device_map())
        # Casts norms to fp32 and keeps the quantized weights frozen; checkpointing is the Trainer's call.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=config.lora_rank,
        lora_alpha=config.resolved_lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.lora_target_modules,
        use_rslora=config.use_rslora,
        use_dora=config.use_dora,
        modules_to_save=config.additional_target_modules,
    )
    return get_peft_model(model, lora)


def quantization_config(config: TrainJobConfig):  # type: ignore[no-untyped-def]
    """The bitsandbytes settings for `quantization_bit`, as LLaMA-Factory builds them."""
    import torch
    from transformers import BitsAndBytesConfig

    if config.quantization_bit == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=config.quantization_type,
        bnb_4bit_use_double_quant=config.double_quantization,
        bnb_4bit_compute_dtype=torch.bfloat16 if config.bf16 else torch.float32,
    )


def _device_map() -> dict[str, str]:
    from shared.modelkit import pick_device

    # bitsandbytes quantizes while placing weights, so the device must be known at load time.
    return {"": pick_device()}
