"""deploy/k8s/ is checked like code: every YAML document validates against the Kubernetes
API schema (kubernetes-validate, strict: an unknown field is an error), the KEDA ScaledObject
against the schema below (written from KEDA's documented fields), and the names the
manifests use for one another resolve. `problems()` returns what is wrong; the negative tests
break an in-memory copy to show each check can fail."""
import copy
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "k8s"
#: The oldest Kubernetes the manifests are meant for (kubernetes-validate ships its schemas).
KUBERNETES_VERSION = "1.30.0"

_STRING = {"type": "string"}
_INT = {"type": "integer", "minimum": 0}
#: KEDA's ScaledObject (keda.sh/v1alpha1), from https://keda.sh/docs/latest/reference/scaledobject-spec/
#: and the redis lists scaler's parameters (https://keda.sh/docs/latest/scalers/redis-lists/).
SCALED_OBJECT_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": _STRING, "namespace": _STRING, "labels": {"type": "object"}, "annotations": {"type": "object"}},
        },
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {"apiVersion": _STRING, "kind": _STRING, "name": _STRING, "envSourceContainerName": _STRING},
                },
                "pollingInterval": _INT,
                "cooldownPeriod": _INT,
                "initialCooldownPeriod": _INT,
                "idleReplicaCount": _INT,
                "minReplicaCount": _INT,
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "fallback": {
                    "type": "object",
                    "required": ["failureThreshold", "replicas"],
                    "properties": {"failureThreshold": _INT, "replicas": _INT, "behavior": _STRING},
                },
                "advanced": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        "horizontalPodAutoscalerConfig": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"name": _STRING, "behavior": {"type": "object"}},
                        },
                        "scalingModifiers": {"type": "object"},
                    },
                },
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "additionalProperties": False,
                        "properties": {
                            "type": _STRING,
                            "name": _STRING,
                            "metadata": {"type": "object", "additionalProperties": _STRING},
                            "authenticationRef": {"type": "object", "required": ["name"], "properties": {"name": _STRING, "kind": _STRING}},
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            "useCachedMetrics": {"type": "boolean"},
                        },
                        "allOf": [
                            {
                                "if": {"properties": {"type": {"const": "redis"}}},
                                "then": {
                                    "properties": {
                                        "metadata": {
                                            "required": ["listName"],
                                            "propertyNames": {
                                                "enum": [
                                                    "address", "addressFromEnv", "host", "hostFromEnv", "port", "portFromEnv",
                                                    "usernameFromEnv", "passwordFromEnv", "listName", "listLength",
                                                    "activationListLength", "databaseIndex", "enableTLS", "unsafeSsl",
                                                ]
                                            },
                                            "anyOf": [
                                                {"required": ["address"]},
                                                {"required": ["addressFromEnv"]},
                                                {"required": ["host", "port"]},
                                                {"required": ["hostFromEnv", "portFromEnv"]},
                                            ],
                                            "properties": {
                                                "listLength": {"pattern": "^[0-9]+$"},
                                                "activationListLength": {"pattern": "^[0-9]+$"},
                                                "databaseIndex": {"pattern": "^[0-9]+$"},
                                            },
                                        }
                                    }
                                },
                            }
                        ],
                    },
                },
            },
        },
    },
}

#: README's Configuration variables the manifests leave at their defaults on purpose (each is
#: explained at the top of deploy/k8s/base/configmap.yaml).
LEFT_AT_DEFAULT = {
    "VITRINE_MEDIA_ROOT", "AWS_S3_ENDPOINT_URL", "VITRINE_REMBG_HOME", "U2NET_HOME", "VITRINE_TORCH_COMPILE",
    "VITRINE_TORCH_COMPILE_MODE", "VITRINE_STOREFRONT_SHOP_URL", "VITRINE_STOREFRONT_FETCH_ALLOW_LOOPBACK",
}


def load_documents() -> list[tuple[str, dict]]:
    """(path relative to deploy/k8s, document) for every YAML document under deploy/k8s/."""
    documents = []
    for path in sorted(DEPLOY.rglob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                documents.append((path.relative_to(DEPLOY).as_posix(), doc))
    return documents


def _named(documents, kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in documents if doc.get("kind") == kind}


def _pod_specs(documents):
    for _, doc in documents:
        if doc.get("kind") in {"Deployment", "Job"}:
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def _containers(pod_spec):
    return [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]


def _env_names(documents, container) -> set[str]:
    """The variables a container sees: its env and the keys of the ConfigMaps and Secrets it
    loads whole."""
    names = {item["name"] for item in container.get("env", [])}
    sources = {"configMapRef": _named(documents, "ConfigMap"), "secretRef": _named(documents, "Secret")}
    for source in container.get("envFrom", []):
        for ref, known in sources.items():
            if ref in source and source[ref]["name"] in known:
                found = known[source[ref]["name"]]
                names |= set(found.get("data", {})) | set(found.get("stringData", {}))
    return names


def _flag(command: list[str], flag: str) -> str | None:
    return command[command.index(flag) + 1] if flag in command else None


def _schema_problems(documents) -> list[str]:
    problems = []
    for path, doc in documents:
        where = f"{path}: {doc.get('kind')} {doc.get('metadata', {}).get('name', '?')}"
        try:
            if doc.get("kind") == "Kustomization":
                continue  # not an API object; checked below
            if doc.get("kind") == "ScaledObject":
                jsonschema.validate(doc, SCALED_OBJECT_SCHEMA)
            else:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except (jsonschema.ValidationError, kubernetes_validate.SchemaNotFoundError) as exc:
            problems.append(f"{where}: {getattr(exc, 'message', exc)}")
    return problems


def _reference_problems(documents) -> list[str]:
    problems = []
    config_maps, secrets = _named(documents, "ConfigMap"), _named(documents, "Secret")
    claims, deployments = _named(documents, "PersistentVolumeClaim"), _named(documents, "Deployment")

    # What pods load, and what they mount, exists.
    for owner, pod in _pod_specs(documents):
        for container in _containers(pod):
            for source in container.get("envFrom", []):
                for ref, known in (("configMapRef", config_maps), ("secretRef", secrets)):
                    if ref in source and source[ref]["name"] not in known:
                        problems.append(f"{owner}/{container['name']}: envFrom {ref} {source[ref]['name']!r} is not in the manifests")
            for item in container.get("env", []):
                for ref, known in (("configMapKeyRef", config_maps), ("secretKeyRef", secrets)):
                    key_ref = item.get("valueFrom", {}).get(ref)
                    if key_ref is None:
                        continue
                    found = known.get(key_ref["name"])
                    keys = set(found.get("data", {})) | set(found.get("stringData", {})) if found else set()
                    if key_ref["key"] not in keys:
                        problems.append(f"{owner}/{container['name']}: env {item['name']} refers to {key_ref['name']}/{key_ref['key']}, which is not in the manifests")
        for volume in pod.get("volumes", []):
            claim = volume.get("persistentVolumeClaim", {}).get("claimName")
            if claim is not None and claim not in claims:
                problems.append(f"{owner}: volume {volume['name']} claims {claim!r}, which is not in the manifests")

    # Selectors select.
    for name, deployment in deployments.items():
        selector = deployment["spec"]["selector"].get("matchLabels", {})
        labels = deployment["spec"]["template"]["metadata"].get("labels", {})
        if not selector.items() <= labels.items():
            problems.append(f"Deployment {name}: its selector does not match its pod labels")
    pod_labels = [d["spec"]["template"]["metadata"].get("labels", {}) for d in deployments.values()]
    for kind, path in (("Service", ("spec", "selector")), ("PodDisruptionBudget", ("spec", "selector", "matchLabels"))):
        for name, doc in _named(documents, kind).items():
            selector = doc
            for key in path:
                selector = selector.get(key, {})
            if not any(selector.items() <= labels.items() for labels in pod_labels):
                problems.append(f"{kind} {name}: its selector matches no Deployment's pods")

    # Workers: each names itself (-n), and the GPU worker is a GPU worker.
    config = next(iter(config_maps.values()), {}).get("data", {})
    gpu = {name: d for name, d in deployments.items() if any(_flag(c.get("command", []), "-Q") == "gpu" for c in d["spec"]["template"]["spec"]["containers"])}
    for name, deployment in deployments.items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            command = container.get("command", [])
            if "worker" in command and not (_flag(command, "-n") or "").endswith("@%h"):
                problems.append(f"Deployment {name}: a Celery worker without `-n <name>@%h`")
    if len(gpu) != 1:
        problems.append(f"there should be one GPU worker Deployment (-Q gpu), not {sorted(gpu)}")
    for name, deployment in gpu.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        command = container["command"]
        if (_flag(command, "--concurrency"), _flag(command, "--prefetch-multiplier")) != ("1", "1"):
            problems.append(f"Deployment {name}: the GPU worker must run --concurrency 1 --prefetch-multiplier 1")
        if str(container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")) != "1":
            problems.append(f"Deployment {name}: limits nvidia.com/gpu must be 1")
        if not pod.get("nodeSelector") or not pod.get("tolerations"):
            problems.append(f"Deployment {name}: a GPU worker needs a nodeSelector and a toleration for GPU nodes")
        if not any(item["name"] == "VITRINE_MODELS_DIR" for item in container.get("env", [])):
            problems.append(f"Deployment {name}: VITRINE_MODELS_DIR is not set")
        hard_limit = int(config.get("VITRINE_GENERATION_SOFT_TIME_LIMIT", 1800)) + 60
        if pod.get("terminationGracePeriodSeconds", 30) < hard_limit:
            problems.append(f"Deployment {name}: terminationGracePeriodSeconds is shorter than a generation's hard limit ({hard_limit} s)")
        if "replicas" in deployment["spec"]:
            problems.append(f"Deployment {name}: replicas is KEDA's to set")

    # KEDA scales the GPU worker, from variables that worker has.
    for name, scaled in _named(documents, "ScaledObject").items():
        target = scaled["spec"]["scaleTargetRef"]["name"]
        if target not in gpu:
            problems.append(f"ScaledObject {name}: scaleTargetRef {target!r} is not the GPU worker Deployment {sorted(gpu)}")
            continue
        env = _env_names(documents, gpu[target]["spec"]["template"]["spec"]["containers"][0])
        for trigger in scaled["spec"]["triggers"]:
            meta = trigger["metadata"]
            if trigger["type"] == "redis" and meta.get("listName") != "gpu":
                problems.append(f"ScaledObject {name}: the redis trigger must watch listName gpu")
            for key, variable in meta.items():
                if key.endswith("FromEnv") and variable not in env:
                    problems.append(f"ScaledObject {name}: {key} {variable!r} is not in {target}'s environment")
        # The dispatcher puts at most VITRINE_GPU_IN_FLIGHT generation jobs on the broker: a
        # lower value would keep KEDA from ever reaching maxReplicaCount.
        in_flight = int(config.get("VITRINE_GPU_IN_FLIGHT", 2))
        if in_flight < scaled["spec"].get("maxReplicaCount", 100):
            problems.append(f"ScaledObject {name}: maxReplicaCount is above VITRINE_GPU_IN_FLIGHT ({in_flight}), so it is never reached")

    # Probes' Host header is an allowed host (else Django answers 400).
    allowed = set(config.get("DJANGO_ALLOWED_HOSTS", "").split(","))
    for owner, pod in _pod_specs(documents):
        for container in _containers(pod):
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                for header in container.get(probe, {}).get("httpGet", {}).get("httpHeaders", []):
                    if header["name"].lower() == "host" and header["value"] not in allowed:
                        problems.append(f"{owner}/{container['name']}: {probe} sends Host {header['value']!r}, not in DJANGO_ALLOWED_HOSTS")

    # Every variable of README's Configuration table is set somewhere, or left out on purpose.
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = {name for line in table.splitlines() if line.startswith("| `") for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1])}
    configured = set(config) | {key for s in secrets.values() for key in (*s.get("data", {}), *s.get("stringData", {}))}
    configured |= {item["name"] for _, pod in _pod_specs(documents) for c in _containers(pod) for item in c.get("env", [])}
    for name in sorted(documented - configured - LEFT_AT_DEFAULT):
        problems.append(f"README's Configuration lists {name}, which no manifest sets (or add it to LEFT_AT_DEFAULT with a reason)")
    return problems


def _kustomization_problems(documents) -> list[str]:
    """Each kustomization lists every manifest of its folder, and only files that exist."""
    problems = []
    files_by_dir: dict[str, set[str]] = {}
    for path, _ in documents:
        folder, _, name = path.rpartition("/")
        files_by_dir.setdefault(folder, set()).add(name)
    kustomizations = [(path, doc) for path, doc in documents if doc.get("kind") == "Kustomization"]
    if not kustomizations:
        problems.append("no kustomization.yaml under deploy/k8s")
    for path, doc in kustomizations:
        folder = path.rpartition("/")[0]
        listed = set(doc.get("resources", []))
        present = files_by_dir.get(folder, set()) - {"kustomization.yaml"}
        for name in sorted(present - listed):
            problems.append(f"{path}: {name} is not listed in resources")
        for name in sorted(listed - present):
            if not (DEPLOY / folder / name).is_dir():
                problems.append(f"{path}: lists {name}, which is not there")
    return problems


def problems(documents) -> list[str]:
    return _schema_problems(documents) + _reference_problems(documents) + _kustomization_problems(documents)


@pytest.fixture(scope="module")
def documents():
    return load_documents()


def test_every_manifest_is_valid_and_every_name_resolves(documents):
    kinds = sorted({doc["kind"] for _, doc in documents})

    assert kinds == [
        "ConfigMap", "Deployment", "Job", "Kustomization", "Namespace", "PersistentVolumeClaim",
        "PodDisruptionBudget", "ScaledObject", "Secret", "Service",
    ]
    assert problems(documents) == []


def test_the_secret_is_a_template_of_placeholders(documents):
    ((path, secret),) = [(p, d) for p, d in documents if d["kind"] == "Secret"]

    assert path == "secret.template.yaml"  # outside base/: `kubectl apply -k` never overwrites real values
    assert all("REPLACE-" in value for value in secret["stringData"].values())


def _doc(documents, kind, name=None):
    return next(d for _, d in documents if d["kind"] == kind and (name is None or d["metadata"]["name"] == name))


def _container(documents, name):
    return _doc(documents, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]


def _misspell_a_field(docs):
    container = _container(docs, "vitrine-web")
    container["imagePulPolicy"] = "Always"


def _replicas_as_words(docs):
    _doc(docs, "Deployment", "vitrine-web")["spec"]["replicas"] = "two"


def _no_list_name(docs):
    del _doc(docs, "ScaledObject")["spec"]["triggers"][0]["metadata"]["listName"]


def _scale_the_web(docs):
    _doc(docs, "ScaledObject")["spec"]["scaleTargetRef"]["name"] = "vitrine-web"


def _misname_the_secret(docs):
    _container(docs, "vitrine-worker-cpu-io")["envFrom"][1]["secretRef"]["name"] = "vitrine-secret"


def _drop_a_config_key(docs):
    del _doc(docs, "ConfigMap")["data"]["REDIS_ADDRESS"]


def _forget_a_file(docs):
    _doc(docs, "Kustomization")["resources"].remove("web-pdb.yaml")


def _no_gpu(docs):
    del _container(docs, "vitrine-worker-gpu")["resources"]["limits"]["nvidia.com/gpu"]


def _short_grace(docs):
    _doc(docs, "Deployment", "vitrine-worker-gpu")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 30


def _few_in_flight(docs):
    _doc(docs, "ConfigMap")["data"]["VITRINE_GPU_IN_FLIGHT"] = "2"


def _probe_host_not_allowed(docs):
    _doc(docs, "ConfigMap")["data"]["DJANGO_ALLOWED_HOSTS"] = "vitrine.example.com"


@pytest.mark.parametrize(
    "break_it, expected",
    [
        (_misspell_a_field, "Additional properties are not allowed ('imagePulPolicy' was unexpected)"),
        (_replicas_as_words, "'two' is not of type 'integer'"),
        (_no_list_name, "'listName' is a required property"),
        (_scale_the_web, "scaleTargetRef 'vitrine-web' is not the GPU worker Deployment"),
        (_misname_the_secret, "envFrom secretRef 'vitrine-secret' is not in the manifests"),
        (_drop_a_config_key, "addressFromEnv 'REDIS_ADDRESS' is not in vitrine-worker-gpu's environment"),
        (_forget_a_file, "web-pdb.yaml is not listed in resources"),
        (_no_gpu, "limits nvidia.com/gpu must be 1"),
        (_short_grace, "terminationGracePeriodSeconds is shorter than a generation's hard limit"),
        (_few_in_flight, "maxReplicaCount is above VITRINE_GPU_IN_FLIGHT (2)"),
        (_probe_host_not_allowed, "readinessProbe sends Host 'localhost', not in DJANGO_ALLOWED_HOSTS"),
    ],
    ids=lambda value: getattr(value, "__name__", "")[1:] or None,
)
def test_a_broken_manifest_fails(documents, break_it, expected):
    broken = copy.deepcopy(documents)
    break_it(broken)

    found = problems(broken)

    assert any(expected in problem for problem in found), found


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_the_base_builds_with_kustomize():
    out = subprocess.run(["kubectl", "kustomize", str(DEPLOY / "base")], capture_output=True, text=True, timeout=60)

    assert out.returncode == 0, out.stderr
    built = [doc for doc in yaml.safe_load_all(out.stdout) if doc]
    assert {doc["metadata"].get("namespace") for doc in built if doc["kind"] != "Namespace"} == {"vitrine"}
    images = {c["image"] for doc in built if doc["kind"] in {"Deployment", "Job"} for c in _containers(doc["spec"]["template"]["spec"])}
    assert images == {"ghcr.io/vitrine/vitrine-app:0.1.0", "ghcr.io/vitrine/vitrine-gpu:0.1.0"}
