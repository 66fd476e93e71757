"""Reading FreqAI models, always scoped to the user asking: another user's model does not exist for them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Prefetch, QuerySet

from freqai.models import FreqaiModel, FreqaiModelVersion
from multibot.errors import NotFoundError

if TYPE_CHECKING:
    from multibot.models import User


def freqai_model_list(*, user: User) -> QuerySet[FreqaiModel]:
    models = FreqaiModel.objects.all() if user.is_superuser else FreqaiModel.objects.filter(owner=user)
    versions = FreqaiModelVersion.objects.select_related("job").order_by("-version")
    return models.prefetch_related(Prefetch("versions", queryset=versions))


def freqai_model_get(*, user: User, model_id: int | str) -> FreqaiModel:
    key = str(model_id)
    is_id = key.isascii() and key.isdigit() and int(key) < 2**63
    found = freqai_model_list(user=user).filter(pk=int(key)).first() if is_id else None
    if found is None:
        raise NotFoundError("Model not found")
    return found


def latest_version(model: FreqaiModel) -> FreqaiModelVersion | None:
    versions = list(model.versions.all())
    return versions[0] if versions else None


def latest_ready_version(model: FreqaiModel) -> FreqaiModelVersion | None:
    return next((version for version in model.versions.all() if version.ready_at is not None), None)


def model_status(model: FreqaiModel) -> str:
    """``created`` (never trained), ``training``, ``completed`` (a ready version), else the last training's end."""
    latest = latest_version(model)
    if latest is None:
        return "created"
    if latest.status == "training":
        return "training"
    if latest_ready_version(model) is not None:
        return "completed"
    return latest.status
