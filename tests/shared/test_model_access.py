"""A user's jobs may load stored models only from that user's own prefix."""

import pytest

from shared.modelkit import check_model_access


@pytest.mark.parametrize(
    "source",
    ["store://users/alice/jobs/ftjob-1/final/", "Qwen/Qwen2.5-0.5B", "/models/base", None, ""],
)
def test_own_store_models_hub_ids_and_local_paths_pass(source):
    check_model_access(source, "alice", "model_name_or_path")


@pytest.mark.parametrize(
    "source",
    [
        "store://users/bob/jobs/ftjob-1/final/",
        "store://users/alice/../bob/jobs/x/final/",
        "store://users/alicex/jobs/x/final/",
        "store://other/place/",
    ],
)
def test_other_users_store_models_are_refused_naming_the_field(source):
    with pytest.raises(PermissionError, match=r"adapter_name_or_path: .* is not under store://users/alice/"):
        check_model_access(source, "alice", "adapter_name_or_path")
