"""Writes what researchers keep beside CodeCarbon logs, with the real libraries: an MLflow
database (its default store) and file store, W&B offline runs, Optuna studies (SQLite and
journal). Each training run is tracked by CodeCarbon 3.3.2 in the same folder. Prints, as JSON,
what each run should be joined with: its CodeCarbon run id, final metrics and parameters.

Usage: python write_results.py OUT_DIR
"""
import json, os, sys, time, logging, warnings

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)
out = os.path.abspath(sys.argv[1])
os.makedirs(out, exist_ok=True)
expected = []


def tracked(folder, project, work):
    """Runs `work(tracker)` under a CodeCarbon tracker logging to folder/emissions.csv."""
    from codecarbon import OfflineEmissionsTracker
    t = OfflineEmissionsTracker(project_name=project, output_dir=folder, country_iso_code="FRA",
                                measure_power_secs=1, force_cpu_power=30, force_ram_power=10,
                                log_level="error", save_to_file=True)
    t.start()
    time.sleep(0.3)
    result = work(t)
    emissions = t.stop()
    return t, emissions, result


def run_id(t):
    return str(t.run_id)


def mlflow_runs(folder, file_store):
    import mlflow
    os.makedirs(folder, exist_ok=True)
    os.chdir(folder)
    if file_store:
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        mlflow.set_tracking_uri("file:" + os.path.join(folder, "mlruns"))
    else:
        mlflow.set_tracking_uri("sqlite:///mlflow.db")
    mlflow.set_experiment("resnet-sweep")
    n = 3 if file_store else 6
    for i in range(n):
        lr = [0.1, 0.01, 0.001, 0.03, 0.003, 0.0003][i]
        acc = [0.71, 0.83, 0.79, 0.8, 0.77, 0.62][i]
        with mlflow.start_run(run_name=f"mlflow-{i}") as r:
            def work(t):
                mlflow.log_params({"lr": lr, "optimizer": "sgd" if i % 2 else "adam"})
                for step in range(3):
                    mlflow.log_metric("accuracy", acc - 0.1 * (2 - step), step=step)
                    mlflow.log_metric("loss", 1.0 / (step + 1 + i), step=step)
            t, emissions, _ = tracked(folder, f"mlflow-{i}", work)
            if file_store or i < 3:
                mlflow.set_tag("codecarbon.run_id", run_id(t))
            else:
                # What most scripts do: log what tracker.stop() returned.
                mlflow.log_metric("co2_kg", emissions)
            expected.append({"source": "mlflow-file" if file_store else "mlflow", "run_id": run_id(t),
                             "metrics": {"accuracy": acc, "loss": 1.0 / (3 + i)},
                             "params": {"lr": str(lr), "optimizer": "sgd" if i % 2 else "adam"}})
    if not file_store:
        # A deleted run is not a result.
        with mlflow.start_run(run_name="deleted") as r:
            mlflow.log_metric("accuracy", 0.99)
        mlflow.delete_run(r.info.run_id)


def wandb_runs(folder):
    import wandb
    os.makedirs(folder, exist_ok=True)
    os.chdir(folder)
    os.environ["WANDB_MODE"] = "offline"
    os.environ["WANDB_SILENT"] = "true"
    for i in range(6):
        acc = [0.61, 0.72, 0.83, 0.74, 0.65, 0.56][i]
        run = wandb.init(project="vit-sweep", name=f"wandb-{i}", dir=folder,
                         config={"lr": 10.0 ** -(i + 1), "optimizer": "adamw", "layers": 6 + i})
        def work(t):
            for step in range(3):
                run.log({"accuracy": acc - 0.05 * (2 - step), "loss": 0.5 / (step + 1)})
        t, emissions, _ = tracked(folder, f"wandb-{i}", work)
        if i < 3:
            run.summary["codecarbon_run_id"] = run_id(t)
        else:
            run.summary["co2_kg"] = emissions
        run.finish()
        expected.append({"source": "wandb", "run_id": run_id(t),
                         "metrics": {"accuracy": acc, "loss": 0.5 / 3},
                         "params": {"lr": json.dumps(10.0 ** -(i + 1)), "optimizer": "adamw", "layers": str(6 + i)}})


def optuna_study(folder, journal):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    os.makedirs(folder, exist_ok=True)
    os.chdir(folder)
    if journal:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend
        storage = JournalStorage(JournalFileBackend(os.path.join(folder, "optuna_journal.log")))
    else:
        storage = "sqlite:///optuna.db"
    name = "bert-journal" if journal else "bert-sqlite"
    study = optuna.create_study(study_name=name, storage=storage, directions=["maximize", "minimize"])

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-5, 1e-3, log=True)
        opt = trial.suggest_categorical("optimizer", ["adam", "sgd", "lamb"])
        acc = round(0.5 + trial.number / 20, 4)
        def work(t):
            return acc
        t, emissions, _ = tracked(folder, f"{name}-{trial.number}", work)
        if trial.number < 3:
            trial.set_user_attr("codecarbon_run_id", run_id(t))
        else:
            trial.set_user_attr("co2_kg", emissions)
        expected.append({"source": "optuna-journal" if journal else "optuna", "run_id": run_id(t),
                         "metrics": {"accuracy": acc, "latency_ms": 10.0 + trial.number},
                         "params": {"lr": repr(lr), "optimizer": opt}})
        return acc, 10.0 + trial.number

    study.set_metric_names(["accuracy", "latency_ms"])
    study.optimize(objective, n_trials=6)
    if journal:
        # Resumed as scripts do (the journal gets its CREATE_STUDY again), then a second study,
        # and a trial added whole, as optuna.copy_study and add_trial write it.
        study = optuna.create_study(study_name=name, storage=storage, load_if_exists=True,
                                    directions=["maximize", "minimize"])
        other = optuna.create_study(study_name=name + "-other", storage=storage, direction="minimize")
        other.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        dist = {"lr": optuna.distributions.FloatDistribution(1e-5, 1e-3, log=True),
                "optimizer": optuna.distributions.CategoricalDistribution(["adam", "sgd", "lamb"])}
        t, emissions, _ = tracked(folder, f"{name}-added", lambda t: None)
        study.add_trial(optuna.trial.create_trial(params={"lr": 2e-4, "optimizer": "lamb"}, distributions=dist,
                                                  values=[0.9, 9.5], user_attrs={"codecarbon_run_id": run_id(t)}))
        expected.append({"source": "optuna-journal", "run_id": run_id(t),
                         "metrics": {"accuracy": 0.9, "latency_ms": 9.5},
                         "params": {"lr": repr(2e-4), "optimizer": "lamb"}})


which = sys.argv[2:] or ["mlflow", "mlflow-file", "wandb", "optuna", "optuna-journal"]
for w in which:
    folder = os.path.join(out, w)
    if w == "mlflow":
        mlflow_runs(folder, False)
    elif w == "mlflow-file":
        mlflow_runs(folder, True)
    elif w == "wandb":
        wandb_runs(folder)
    elif w == "optuna":
        optuna_study(folder, False)
    elif w == "optuna-journal":
        optuna_study(folder, True)
print(json.dumps(expected))
