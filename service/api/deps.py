"""FastAPI dependencies as `Annotated` aliases: the store, artifacts, settings, the user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.api.services import Services
from service.config import Settings
from service.schemas import UserPublic
from service.store import ArtifactStore, Store

_bearer = HTTPBearer(auto_error=False, description="An API token from `hwnas admin token`.")
MAX_ID = 2**31 - 1


def get_services(request: Request) -> Services:
    return request.app.state.services


def get_store(services: Annotated[Services, Depends(get_services)]) -> Store:
    return services.store


def get_artifacts(services: Annotated[Services, Depends(get_services)]) -> ArtifactStore:
    return services.artifacts


def get_settings(services: Annotated[Services, Depends(get_services)]) -> Settings:
    return services.settings


def current_user(
    store: Annotated[Store, Depends(get_store)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> UserPublic:
    """The token's user; 401 without a valid bearer token."""
    user = None if credentials is None else store.user_for_token(credentials.credentials)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "missing or invalid bearer token (Authorization: Bearer hwnas_...)",
                            headers={"WWW-Authenticate": "Bearer"})
    return user


StoreDep = Annotated[Store, Depends(get_store)]
ArtifactsDep = Annotated[ArtifactStore, Depends(get_artifacts)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ServicesDep = Annotated[Services, Depends(get_services)]
CurrentUser = Annotated[UserPublic, Depends(current_user)]
DeviceId = Annotated[int, Path(ge=1, le=MAX_ID, description="A device id.")]
JobId = Annotated[int, Path(ge=1, le=MAX_ID, description="A job id.")]
