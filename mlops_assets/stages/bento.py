"""`<dataset>/bento`: the champion copied into the BentoML model store, and a Bento that serves it by tag."""


import dagster as dg

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.resources import BentoStore, HomeResource, MlflowTracking
from mlops_assets.stages import Stage, asset_key


def build_bento_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    name = spec.name

    @dg.asset(
        key=asset_key(name, Stage.BENTO),
        deps=[asset_key(name, Stage.MODEL)],
        group_name=name,
        kinds={"bentoml"},
        description=f"The {name} champion in the BentoML model store, and the Bento built from bento/ "
        "that serves it when started by its tag.",
    )
    def bento(
        context: dg.AssetExecutionContext, tracking: MlflowTracking, bento_store: BentoStore, home: HomeResource
    ) -> dg.MaterializeResult:
        from mlops_assets.serving.packaging import build_bento, import_champion, service_contract
        from mlops_assets.training.lineage import load_lineage
        from mlops_assets.training.registry import champion, load_champion_pipeline

        version = champion(tracking, spec)
        if version is None:
            raise dg.Failure(description=f"{name}: no champion model to package; materialize {name}/model first",
                             allow_retries=False)
        bentoml = bento_store.bentoml()
        threshold = tracking.client().get_run(version.run_id).data.metrics.get("decision_threshold")
        contract = service_contract(spec, home.paths)
        lineage = load_lineage(tracking, version.run_id)
        model_tag, reused = import_champion(
            bentoml, spec, version, lambda: load_champion_pipeline(tracking, spec, version),
            contract=contract, lineage=lineage, threshold=threshold,
        )
        bento_tag, bento_path = build_bento(bentoml, spec, model_tag, contract)
        context.log.info(f"{name}: bento {bento_tag} serves {model_tag} (MLflow version {version.version})")
        return dg.MaterializeResult(
            metadata={
                "bento_model": model_tag,
                "bento": bento_tag,
                "bento_path": dg.MetadataValue.path(bento_path),
                "mlflow_version": str(version.version),
                "reused_model": reused,
                "code_version": lineage.get("code_version", "unknown"),
                "prediction_log": dg.MetadataValue.path(str(home.paths.predictions(name))),
                "serve": f"mlops-assets serve {name}   (or: BENTOML_HOME={bento_store.home} bentoml serve {bento_tag})",
            }
        )

    return bento
