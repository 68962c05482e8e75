"""FastAPI dependencies as `Annotated` aliases: the store, artifacts, settings, the user.

They are `async def`, so FastAPI runs them on the event loop: a plain `def` dependency
costs a hop to a worker thread per request (and a wait for one under load), which
for these one-line lookups is most of their cost. Only a token missing from the store's
cache goes to a thread, for its database query.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.api.services import Services
from service.config import Settings
from service.schemas import UserPublic
from service.store import ArtifactStore, Store

_bearer = HTTPBearer(auto_error=False, description="An API token from `hwnas admin token`.")
MAX_ID = 2**31 - 1


async def get_services(request: Request) -> Services:
    return request.app.state.services


async def get_store(services: Annotated[Services, Depends(get_services)]) -> Store:
    return services.store


async def get_artifacts(services: Annotated[Services, Depends(get_services)]) -> ArtifactStore:
    return services.artifacts


async def get_settings(services: Annotated[Services, Depends(get_services)]) -> Settings:
    return services.settings


async def current_user(
    store: Annotated[Store, Depends(get_store)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> UserPublic:
    """The token's user; 401 without a valid bearer token.

    A token seen in the last `token_cache_s` seconds is answered from memory on the
    event loop; otherwise the database is asked in a worker thread.
    """
    user = None
    if credentials is not None:
        secret = credentials.credentials
        user = store.cached_user(secret) or await run_in_threadpool(store.user_for_token,
                                                                    secret)
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
