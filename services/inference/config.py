"""The inference server's configuration: one typed object the CLI, the app factory and tests share."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ServeConfig(BaseModel):
    """How one inference server runs. Field descriptions double as `tuneflow serve --help`."""

    model: str = Field(description="Base model: a local folder, a hub id or a `store://users/...` prefix.")
    served_model_name: str = Field(default="", description="Name clients use for the base model; default `model`.")
    adapters: dict[str, str] = Field(
        default_factory=dict, description="Local LoRA adapters anyone with access may call: name -> folder."
    )
    api_key: str | None = Field(default=None, description="Shared secret clients must send; None: no key needed.")
    platform: bool = Field(
        default=False, description="Check API keys against the shared database and serve users' `ft:` models."
    )
    max_batch_size: int = Field(default=16, ge=1, description="Most sequences decoded together in one batch.")
    max_queue: int = Field(default=256, ge=1, description="Most sequences waiting; beyond it requests get 429.")
    batch_wait_ms: float = Field(
        default=0.0,
        ge=0,
        description="How long an idle server holds a new batch open for company (latecomers can join it anyway).",
    )
    join_wait_ms: float = Field(
        default=20.0,
        ge=0,
        description="How long requests wait to join a running batch together (each join costs it a prefill).",
    )
    stream_interval_ms: float = Field(
        default=20.0, ge=0, description="Streamed text is sent at most this often per batch (first and last at once)."
    )
    adapter_cache: int = Field(default=8, ge=1, description="Most adapters and exported models kept loaded (LRU).")
    max_input_tokens: int = Field(default=2048, ge=1, description="Longest prompt accepted, in tokens.")
    max_output_tokens: int = Field(default=1024, ge=1, description="Largest `max_tokens` accepted.")
    default_max_tokens: int = Field(default=256, ge=1, description="`max_tokens` when a request leaves it out.")
    engine: str = Field(default="auto", description="`transformers`, `vllm`, or `auto` (vLLM on CUDA when installed).")

    @property
    def base_name(self) -> str:
        """The name clients use for the base model."""
        return self.served_model_name or self.model
