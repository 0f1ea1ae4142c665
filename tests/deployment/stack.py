"""Deploys deploy/cloudformation/trailhound.yaml into the moto server for tests/deploy.rs.

Creates the trail bucket (and, for a Lambda stack, a code bucket holding a zip), creates the
stack, waits for CREATE_COMPLETE, wires the bucket's S3 event notification to the stack's queue
(what the BucketNotificationCommand output does) and prints the stack's outputs as JSON.

For a Lambda stack the bucket is not wired: moto hands every message of a queue with an event
source mapping to the function, which it would run in Docker (not here; deleting the mapping does
not detach it in moto 5.2.5, and sending then fails). The test plays the notification and the
mapping instead, invoking the function through the Lambda Runtime API emulator.

usage: stack.py ENDPOINT NAME {Lambda,ECS} TEMPLATE
"""
import io
import json
import sys
import zipfile

import boto3


def main():
    endpoint, name, mode, template = sys.argv[1:5]
    kw = dict(endpoint_url=endpoint, region_name="us-east-1",
              aws_access_key_id="testing", aws_secret_access_key="testing")
    s3 = boto3.client("s3", **kw)
    cfn = boto3.client("cloudformation", **kw)
    trail_bucket = f"{name}-trail"
    s3.create_bucket(Bucket=trail_bucket)
    params = {"TrailBucketName": trail_bucket, "NotificationSource": "S3", "ComputeMode": mode}
    if mode == "Lambda":
        code_bucket = f"{name}-code"
        s3.create_bucket(Bucket=code_bucket)
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("bootstrap", "#!/bin/sh\n")
        s3.put_object(Bucket=code_bucket, Key="trailhound/bootstrap.zip", Body=archive.getvalue())
        params["LambdaCodeS3Bucket"] = code_bucket
    else:
        params["ImageUri"] = "111122223333.dkr.ecr.us-east-1.amazonaws.com/trailhound:test"
        params["Subnets"] = "subnet-0123456789abcdef0"
        params["SecurityGroups"] = "sg-0123456789abcdef0"
    with open(template) as f:
        body = f.read()
    cfn.create_stack(StackName=name, TemplateBody=body, Capabilities=["CAPABILITY_IAM"],
                     Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        sys.exit(f"stack {name}: {stack['StackStatus']} {stack.get('StackStatusReason')}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    outputs["TrailBucketName"] = trail_bucket
    if mode == "ECS":
        s3.put_bucket_notification_configuration(Bucket=trail_bucket, NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": outputs["QueueArn"], "Events": ["s3:ObjectCreated:*"],
                                     "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "AWSLogs/"}]}}}]})
    summaries = cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
    outputs["Resources"] = sorted(r["LogicalResourceId"] for r in summaries if r.get("LogicalResourceId"))
    print(json.dumps(outputs))


if __name__ == "__main__":
    main()
