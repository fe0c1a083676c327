"""Running an example's Kubernetes Pod locally from its own manifests (examples/*/k8s/), so
that they cannot rot: the documents by kind, and the Pod's volumes as local directories
with its mount paths translated into them."""

from pathlib import Path

import yaml


def manifests(directory):
    """{kind: document} of every YAML file in directory."""
    docs = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs[doc["kind"]] = doc
    return docs


class PodVolumes:
    """The Pod's volumes under root: mount() makes the directory of a volumeMount (filling a
    ConfigMap volume with the ConfigMap's files, each passed through config(name, text)),
    translate() turns a path inside a mount into the local one."""

    def __init__(self, pod, configmap, root, config=lambda name, text: text):
        self.volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        self.configmap = configmap
        self.root = Path(root)
        self.config = config
        self.mounts = {}  # mountPath in the pod -> directory here

    def mount(self, m):
        if m["mountPath"] in self.mounts:
            return self.mounts[m["mountPath"]]
        vol = self.volumes[m["name"]]
        d = self.root / "volumes" / m["name"]
        d.mkdir(parents=True, exist_ok=True)
        if "configMap" in vol:
            assert vol["configMap"]["name"] == self.configmap["metadata"]["name"]
            for name, text in self.configmap["data"].items():
                (d / name).write_text(self.config(name, text))
        self.mounts[m["mountPath"]] = d
        return d

    def translate(self, value):
        for path, d in sorted(self.mounts.items(), key=lambda m: -len(m[0])):
            if value == path or value.startswith(path + "/"):
                return str(d) + value[len(path):]
        return value
