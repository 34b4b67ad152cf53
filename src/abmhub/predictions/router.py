"""Prediction endpoints (contract §10): the workspace's models, and an account's prediction."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from abmhub.db.engine import Database
from abmhub.predictions import service
from abmhub.tenancy.service import Caller
from abmhub.timefmt import format_us
from abmhub.web.dependencies import caller, database
from abmhub.web.responses import envelope
from abmhub.web.schemas import ERROR_RESPONSES, Envelope


class TrainedOn(BaseModel):
    snapshots: int
    positives: int = Field(description="Snapshots followed by a new opportunity within the horizon")
    accounts: int


class BandEntry(BaseModel):
    band: str = Field(examples=["A"])
    accounts: int
    conversionRate: float | None = Field(description="Share of the band's backtest rows that opened an opportunity")
    predictedRate: float | None = Field(description="The model's mean probability in the band (calibration)")


class Backtest(BaseModel):
    rocAuc: float
    prAuc: float
    brier: float
    topDecileLift: float
    handSetRocAuc: float
    handSetTopDecileLift: float
    bands: list[BandEntry]
    intervals: dict[str, list[float] | None] = Field(
        description="95 % bootstrap intervals, resampling accounts (rocAucGain: the model's ROC-AUC minus the hand-set's)"
    )


class ModelEntry(BaseModel):
    modelId: str
    createdAt: str
    active: bool
    horizonDays: int
    trainedOn: TrainedOn
    backtest: Backtest


class Factor(BaseModel):
    feature: str = Field(examples=["Bombora surges, last 30 days"])
    name: str = Field(examples=["bombora_30d"], description="The feature's name in the model report")
    value: float
    contribution: float = Field(description="Log-odds against the average account")


class PredictionBody(BaseModel):
    rtp_aid: str
    modelId: str
    asOf: str
    probability: float | None = Field(description="Opens an opportunity within the horizon (null: it has one)")
    probability30d: float | None
    band: str | None = Field(examples=["A"])
    factors: list[Factor] = Field(description="Top 5 by |contribution|")


def model_entry(record: service.ModelRecord) -> dict[str, Any]:
    report = record.report
    trained = report["trainedOn"]
    return {
        "modelId": record.model_id,
        "createdAt": format_us(record.created_us),
        "active": record.active,
        "horizonDays": record.horizon_days,
        "trainedOn": {
            "snapshots": trained["snapshots"],
            "positives": trained["positives"],
            "accounts": trained["accounts"],
        },
        "backtest": report["backtest"],
        "explanation": report.get("explanation"),
        "drift": report.get("drift"),
        "fingerprint": record.fingerprint,
        "asOf": format_us(record.as_of_us),
    }


def prediction_body(found: service.Prediction) -> dict[str, Any]:
    return {
        "rtp_aid": found.rtp_aid,
        "modelId": found.model_id,
        "asOf": format_us(found.as_of_us),
        "probability": found.probability,
        "probability30d": found.probability_30d,
        "band": found.band,
        "factors": found.factors,
    }


def build_router() -> APIRouter:
    router = APIRouter(tags=["predictions"], responses=ERROR_RESPONSES)

    @router.get(
        "/models",
        summary="The workspace's prediction models with their backtest reports, newest first",
        response_model=Envelope[list[ModelEntry]],
    )
    def models(request: Request, who: Caller = Depends(caller), db: Database = Depends(database)) -> Response:
        return envelope(request, [model_entry(m) for m in service.list_models(db, workspace_id=who.workspace_id)])

    @router.get(
        "/accounts/{rtp_aid}/prediction",
        summary="Will the account open an opportunity within the horizon? The active model's answer and why",
        response_model=Envelope[PredictionBody],
    )
    def prediction(
        request: Request, rtp_aid: str, who: Caller = Depends(caller), db: Database = Depends(database)
    ) -> Response:
        found = service.prediction_for(db, workspace_id=who.workspace_id, rtp_aid=rtp_aid)
        return envelope(request, prediction_body(found))

    return router
