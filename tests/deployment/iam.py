"""Least privilege, proven against what the code does (issue 12, SPEC §7).

Reads the AWS calls trailhound made in the deployment tests (TRAILHOUND_AWS_CALL_LOG files, one
per command: `service operation[ item kinds]` per line), maps each to the IAM action that
authorizes it, and checks that each role of the CloudFormation template and each policy document
of the Terraform module grants exactly those actions: nothing the code never calls, nothing it
calls missing. Statements that serve AWS's own machinery rather than trailhound's code are named
by Sid and left out of the comparison: the event source mapping's SQS calls and the Lambda
service's log writes. Also checked everywhere: no wildcard action, no `*` resource except
ecr:GetAuthorizationToken (which has no resource), and trail reads scoped to `AWSLogs/`.

The template is evaluated as deployed with the defaults (no KMS key, not an organization trail):
kms:Decrypt cannot be recorded (S3 calls KMS on the caller's behalf) and is granted only when
TrailKmsKeyArn is set.

usage: iam.py TEMPLATE TERRAFORM_MAIN HCL2_PYTHON lambda=FILE run=FILE backfill=FILE
Run with the tools venv's python (cfn-lint's YAML reader); HCL2_PYTHON has python-hcl2.
"""
import json
import re
import subprocess
import sys

from cfnlint.decode import decode

# CloudFormation role (logical id) and Terraform policy document for each command.
ROLES = {
    "lambda": ("FunctionRole", "function"),
    "run": ("WorkerTaskRole", "run"),
    "backfill": ("BackfillTaskRole", "backfill"),
}
# Statements for AWS's machinery, not for trailhound's calls.
SERVICE_SIDS = {"EventSourceMapping", "Logs"}
# Conditions as deployed by the tests (and by default).
CONDITIONS = {"HasKmsKey": False, "IsOrganizationTrail": False}
# Operations whose IAM action has another name.
ACTION_OF = {
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:HeadObject": "s3:GetObject",
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "sns:PublishBatch": "sns:Publish",
}
PREFIX = {"S3": "s3", "SQS": "sqs", "SNS": "sns", "DynamoDB": "dynamodb", "SecurityHub": "securityhub",
          "EventBridge": "events"}
TRANSACTION_ITEM = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem", "Delete": "dynamodb:DeleteItem",
                    "ConditionCheck": "dynamodb:ConditionCheckItem"}


def required(path):
    """The IAM actions the recorded calls need."""
    actions = set()
    with open(path) as f:
        for line in f:
            words = line.split()
            if len(words) < 2:
                continue
            service, operation, details = words[0], words[1], words[2:]
            if operation == "TransactWriteItems":
                actions.update(TRANSACTION_ITEM[d] for d in details)
                continue
            name = f"{PREFIX.get(service, service.lower())}:{operation}"
            actions.add(ACTION_OF.get(name, name))
    return actions


def resolve(node):
    """Evaluates Fn::If with CONDITIONS and drops AWS::NoValue."""
    if isinstance(node, dict):
        if list(node) == ["Fn::If"]:
            condition, yes, no = node["Fn::If"]
            return resolve(yes if CONDITIONS[condition] else no)
        return {k: resolve(v) for k, v in node.items()}
    if isinstance(node, list):
        items = [resolve(v) for v in node]
        return [v for v in items if v != {"Ref": "AWS::NoValue"}]
    return node


def as_list(value):
    return value if isinstance(value, list) else [value]


def cfn_statements(template, role):
    policies = resolve(template["Resources"][role]["Properties"]["Policies"])
    return [s for p in policies for s in p["PolicyDocument"]["Statement"]]


def unquote(node):
    """python-hcl2 8 keeps the quotes of strings and keys."""
    if isinstance(node, dict):
        return {unquote(k): unquote(v) for k, v in node.items()}
    if isinstance(node, list):
        return [unquote(v) for v in node]
    if isinstance(node, str) and len(node) >= 2 and node[0] == node[-1] == '"':
        return node[1:-1]
    return node


def walk(node, change):
    """`node` with `change` applied to every string in it."""
    if isinstance(node, dict):
        return {k: walk(v, change) for k, v in node.items()}
    if isinstance(node, list):
        return [walk(v, change) for v in node]
    return change(node) if isinstance(node, str) else node


def tf_documents(main_tf, hcl2_python):
    dump = "import hcl2, json, sys; json.dump(hcl2.load(open(sys.argv[1])), sys.stdout)"
    parsed = unquote(json.loads(subprocess.check_output([hcl2_python, "-c", dump, main_tf])))
    local_values = {k: v for block in parsed.get("locals", []) for k, v in block.items()}

    def expand(text):
        # `${local.NAME}` → the local's own expression, so a resource's scope can be read.
        for _ in range(4):
            text = re.sub(r"local\.(\w+)", lambda m: str(local_values.get(m.group(1), m.group(0))), text)
        return text

    documents = {}
    for block in parsed["data"]:
        for name, document in block.get("aws_iam_policy_document", {}).items():
            documents[name] = walk(document, expand)
    return documents


def tf_statements(documents, name):
    document = documents[name]
    statements = []
    for source in document.get("source_policy_documents", []):
        # "${data.aws_iam_policy_document.NAME.json}"
        statements += tf_statements(documents, source.split(".")[-2])
    for statement in document.get("statement", []):
        statements.append({"Sid": statement.get("sid"), "Action": statement["actions"],
                           "Resource": statement.get("resources", [])})
    # `dynamic "statement"` blocks (the KMS key) are off with the defaults, as in CONDITIONS.
    return statements


def granted(statements):
    return {a for s in statements if s.get("Sid") not in SERVICE_SIDS for a in as_list(s["Action"])}


def hygiene(where, statements):
    problems = []
    for s in statements:
        for action in as_list(s["Action"]):
            if "*" in action:
                problems.append(f"{where}: wildcard action {action}")
        resources = as_list(s.get("Resource", []))
        if "*" in resources and s.get("Sid") != "RegistryToken":
            problems.append(f"{where} {s.get('Sid')}: resource *")
        if "s3:GetObject" in as_list(s["Action"]):
            for resource in resources:
                text = json.dumps(resource)
                if "AWSLogs/" not in text:
                    problems.append(f"{where}: s3:GetObject beyond AWSLogs/: {text}")
    return problems


def main():
    template_path, main_tf, hcl2_python, *calls = sys.argv[1:]
    recorded = {k: required(v) for k, v in (c.split("=", 1) for c in calls)}
    template, matches = decode(template_path)
    if matches:
        sys.exit(f"cannot read {template_path}: {matches}")
    documents = tf_documents(main_tf, hcl2_python)
    problems = []
    for command, need in sorted(recorded.items()):
        role, document = ROLES[command]
        for where, statements in ((f"template {role}", cfn_statements(template, role)),
                                  (f"terraform {document}", tf_statements(documents, document))):
            have = granted(statements)
            if have != need:
                problems.append(f"{where} ({command}): granted but never called {sorted(have - need)}; "
                                f"called but not granted {sorted(need - have)}")
            problems += hygiene(where, statements)
        print(f"{command}: {', '.join(sorted(need))}")
    for role in ("TaskExecutionRole",):
        problems += hygiene(f"template {role}", cfn_statements(template, role))
    problems += hygiene("terraform task_execution", tf_statements(documents, "task_execution"))
    if problems:
        print("\n".join(problems))
        sys.exit(1)


if __name__ == "__main__":
    main()
