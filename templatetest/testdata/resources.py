"""Prints the resources CloudFormation would create for template.yaml with
the given parameter values, one "LogicalId Type" line each, after
AWS::LanguageExtensions (when the template declares it) and the SAM
transform. Run with the Python of scripts/install-template-tools.sh.

Usage: resources.py TEMPLATE PARAMETERS_JSON
"""
import json
import os
import sys

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform


class NoManagedPolicies:
    """The template names no managed policy; SAM needs a loader anyway."""

    def load(self):
        return {}


def main():
    # SAM fills AWS::Region in a few ARNs; any Region gives the same resources.
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    with open(sys.argv[1]) as f:
        template = yaml_parse(f.read())
    params = json.loads(sys.argv[2])
    transforms = template.get("Transform", [])
    if isinstance(transforms, str):
        transforms = [transforms]
    if "AWS::LanguageExtensions" in transforms:
        from samcli.lib.cfn_language_extensions.api import process_template

        template = process_template(template, parameter_values=params)
    # As sam validate does: local code and definitions stand for what
    # sam package uploads.
    fn = template.get("Globals", {}).get("Function", {})
    if isinstance(fn.get("CodeUri"), str):
        fn["CodeUri"] = "s3://bucket/code"
    for res in template["Resources"].values():
        props = res.get("Properties", {})
        for key in ("CodeUri", "DefinitionUri"):
            if isinstance(props.get(key), str):
                props[key] = "s3://bucket/" + key
    out = transform(template, params, NoManagedPolicies())
    for logical_id, res in sorted(out["Resources"].items()):
        print(logical_id, res["Type"])


if __name__ == "__main__":
    main()
