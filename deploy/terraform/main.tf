# trailhound beside an existing trail: the notification queue and its dead-letter queue, the
# wiring from the trail, the alert topic, the DynamoDB state table, the worker (a Lambda function
# behind an SQS event source mapping, or an ECS/Fargate service plus a backfill task
# definition) and alarms on dead letters and lag. Each role grants exactly the API actions
# trailhound calls, on these resources (tests/deploy.rs checks them against recorded calls).

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  lambda       = var.compute == "lambda"
  ecs          = var.compute == "ecs"
  lambda_zip   = local.lambda && var.lambda_zip != ""
  logs_prefix  = var.organization_id == "" ? "${var.trail_key_prefix}AWSLogs/" : "${var.trail_key_prefix}AWSLogs/${var.organization_id}/"
  bucket_arn   = "arn:${data.aws_partition.current.partition}:s3:::${var.trail_bucket_name}"
  logs_arn     = "${local.bucket_arn}/${local.logs_prefix}*"
  visibility_s = var.function_timeout * 6
}

# ---- Notifications in ---------------------------------------------------------------------

resource "aws_sqs_queue" "dead_letters" {
  name                      = "${var.name}-dead-letters"
  message_retention_seconds = 1209600
  # checkov:skip=CKV_AWS_27:SSE-SQS. S3 event notifications cannot reach a queue under the AWS managed KMS key; bring a customer managed key if your policy needs one.
  sqs_managed_sse_enabled = true
}

resource "aws_sqs_queue" "notifications" {
  name                       = "${var.name}-notifications"
  visibility_timeout_seconds = local.visibility_s
  message_retention_seconds  = 1209600
  receive_wait_time_seconds  = 20
  # checkov:skip=CKV_AWS_27:SSE-SQS. S3 event notifications cannot reach a queue under the AWS managed KMS key; bring a customer managed key if your policy needs one.
  sqs_managed_sse_enabled = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letters.arn
    maxReceiveCount     = var.max_receive_count
  })
}

data "aws_iam_policy_document" "queue" {
  statement {
    sid       = "TrailNotifications"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.notifications.arn]
    principals {
      type        = "Service"
      identifiers = [var.notification_source == "s3" ? "s3.amazonaws.com" : var.notification_source == "sns" ? "sns.amazonaws.com" : "events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [var.notification_source == "s3" ? local.bucket_arn : var.notification_source == "sns" ? var.trail_topic_arn : aws_cloudwatch_event_rule.object_created[0].arn]
    }
  }
  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.notifications.arn]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "notifications" {
  queue_url = aws_sqs_queue.notifications.id
  policy    = data.aws_iam_policy_document.queue.json
}

# S3 keeps one notification configuration per bucket: this resource replaces the bucket's.
resource "aws_s3_bucket_notification" "trail" {
  count  = var.notification_source == "s3" ? 1 : 0
  bucket = var.trail_bucket_name
  queue {
    queue_arn     = aws_sqs_queue.notifications.arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = local.logs_prefix
  }
  depends_on = [aws_sqs_queue_policy.notifications]
}

resource "aws_sns_topic_subscription" "trail" {
  count     = var.notification_source == "sns" ? 1 : 0
  topic_arn = var.trail_topic_arn
  protocol  = "sqs"
  endpoint  = aws_sqs_queue.notifications.arn
}

resource "aws_cloudwatch_event_rule" "object_created" {
  count       = var.notification_source == "eventbridge" ? 1 : 0
  name        = "${var.name}-trail-objects"
  description = "New CloudTrail log objects in the trail bucket"
  event_pattern = jsonencode({
    source      = ["aws.s3"]
    detail-type = ["Object Created"]
    detail = {
      bucket = { name = [var.trail_bucket_name] }
      object = { key = [{ prefix = local.logs_prefix }] }
    }
  })
}

resource "aws_cloudwatch_event_target" "object_created" {
  count = var.notification_source == "eventbridge" ? 1 : 0
  rule  = aws_cloudwatch_event_rule.object_created[0].name
  arn   = aws_sqs_queue.notifications.arn
}

# ---- Alerts out and state -------------------------------------------------------------------

resource "aws_sns_topic" "alerts" {
  name              = "${var.name}-alerts"
  kms_master_key_id = "alias/aws/sns"
}

resource "aws_dynamodb_table" "state" {
  # checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS owned key; the table holds finding ids, baselines and counters, no log content.
  name         = "${var.name}-state"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  attribute {
    name = "pk"
    type = "S"
  }
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }
  point_in_time_recovery {
    enabled = true
  }
  server_side_encryption {
    enabled = true
  }
}

# ---- What the worker may do (one document per role) -----------------------------------------

# What `run` and `lambda` both do with the trail's objects, the alerts and the state.
data "aws_iam_policy_document" "inspect" {
  statement {
    sid       = "ReadTrailLogs"
    actions   = ["s3:GetObject"]
    resources = [local.logs_arn]
  }
  dynamic "statement" {
    for_each = var.trail_kms_key_arn == "" ? [] : [var.trail_kms_key_arn]
    content {
      sid       = "DecryptTrailLogs"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
  statement {
    sid       = "PublishAlerts"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }
  statement {
    sid       = "State"
    actions   = ["dynamodb:BatchGetItem", "dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:Scan", "dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.state.arn]
  }
}

# `trailhound run` (the ECS service) receives, extends and deletes messages itself.
data "aws_iam_policy_document" "run" {
  source_policy_documents = [data.aws_iam_policy_document.inspect.json]
  statement {
    sid       = "Notifications"
    actions   = ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
    resources = [aws_sqs_queue.notifications.arn]
  }
}

# The Lambda function: its event source mapping receives and deletes on its behalf, and the
# Lambda service writes its logs; trailhound's own calls are the `inspect` ones.
data "aws_iam_policy_document" "function" {
  source_policy_documents = [data.aws_iam_policy_document.inspect.json]
  statement {
    sid       = "EventSourceMapping"
    actions   = ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
    resources = [aws_sqs_queue.notifications.arn]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = local.lambda ? ["${aws_cloudwatch_log_group.function[0].arn}:*"] : []
  }
}

data "aws_iam_policy_document" "backfill" {
  statement {
    sid       = "ListTrailLogs"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.logs_prefix}*"]
    }
  }
  statement {
    sid       = "Enqueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.notifications.arn]
  }
  statement {
    sid       = "Checkpoints"
    actions   = ["dynamodb:BatchGetItem", "dynamodb:DescribeTable", "dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.state.arn]
  }
}

# ---- The worker as a Lambda function --------------------------------------------------------

resource "aws_cloudwatch_log_group" "function" {
  count = local.lambda ? 1 : 0
  # checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts at rest by default; trailhound's logs carry no secrets.
  # checkov:skip=CKV_AWS_338:Retention is a variable (90 days by default); a year is a choice, not a default.
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  count              = local.lambda ? 1 : 0
  name               = "${var.name}-function"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

resource "aws_iam_role_policy" "function" {
  count  = local.lambda ? 1 : 0
  name   = "trailhound-function"
  role   = aws_iam_role.function[0].id
  policy = data.aws_iam_policy_document.function.json
}

resource "aws_lambda_function" "worker" {
  count = local.lambda ? 1 : 0
  # checkov:skip=CKV_AWS_117:Reaches only AWS APIs (S3, SNS, DynamoDB); add vpc_config if your accounts require it.
  # checkov:skip=CKV_AWS_116:SQS-triggered: failed messages return to the queue, whose redrive policy moves them to the dead-letter queue.
  # checkov:skip=CKV_AWS_173:The environment holds resource names only, no secrets.
  # checkov:skip=CKV_AWS_272:Code signing needs your organisation's signing profile; add code_signing_config_arn when you have one.
  # checkov:skip=CKV_AWS_50:X-Ray adds cost per trace and no insight the JSON invocation log lines lack.
  function_name                  = var.name
  description                    = "trailhound lambda: CloudTrail log objects from SQS, findings to SNS"
  role                           = aws_iam_role.function[0].arn
  package_type                   = local.lambda_zip ? "Zip" : "Image"
  filename                       = local.lambda_zip ? var.lambda_zip : null
  source_code_hash               = local.lambda_zip ? filebase64sha256(var.lambda_zip) : null
  runtime                        = local.lambda_zip ? "provided.al2023" : null
  handler                        = local.lambda_zip ? "bootstrap" : null
  image_uri                      = local.lambda_zip ? null : var.image_uri
  architectures                  = [var.architecture]
  memory_size                    = var.memory_size
  timeout                        = var.function_timeout
  reserved_concurrent_executions = 20
  dynamic "image_config" {
    for_each = local.lambda_zip ? [] : [1]
    content {
      command = ["lambda"]
    }
  }
  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function[0].name
  }
  environment {
    variables = {
      TRAILHOUND_STATE            = "dynamodb://${aws_dynamodb_table.state.name}"
      TRAILHOUND_TOPIC_ARN        = aws_sns_topic.alerts.arn
      TRAILHOUND_PUBLISH_SEVERITY = var.publish_severity
    }
  }
}

resource "aws_lambda_event_source_mapping" "notifications" {
  count                   = local.lambda ? 1 : 0
  event_source_arn        = aws_sqs_queue.notifications.arn
  function_name           = aws_lambda_function.worker[0].arn
  batch_size              = var.batch_size
  function_response_types = ["ReportBatchItemFailures"]
  scaling_config {
    maximum_concurrency = 20
  }
}

# ---- The worker as an ECS/Fargate service, and backfill as a task ---------------------------

resource "aws_ecs_cluster" "this" {
  count = local.ecs ? 1 : 0
  name  = var.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "tasks" {
  count = local.ecs ? 1 : 0
  # checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts at rest by default; trailhound's logs carry no secrets.
  # checkov:skip=CKV_AWS_338:Retention is a variable (90 days by default); a year is a choice, not a default.
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
}

data "aws_iam_policy_document" "ecs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# Used by the ECS agent to pull the image and ship logs, not by trailhound's code.
data "aws_iam_policy_document" "task_execution" {
  statement {
    sid       = "PullImage"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = ["arn:${data.aws_partition.current.partition}:ecr:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:repository/*"]
  }
  statement {
    sid       = "RegistryToken"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = local.ecs ? ["${aws_cloudwatch_log_group.tasks[0].arn}:*"] : []
  }
}

resource "aws_iam_role" "task_execution" {
  count              = local.ecs ? 1 : 0
  name               = "${var.name}-task-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
}

resource "aws_iam_role_policy" "task_execution" {
  count  = local.ecs ? 1 : 0
  name   = "trailhound-task-execution"
  role   = aws_iam_role.task_execution[0].id
  policy = data.aws_iam_policy_document.task_execution.json
}

resource "aws_iam_role" "worker_task" {
  count              = local.ecs ? 1 : 0
  name               = "${var.name}-run"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
}

resource "aws_iam_role_policy" "worker_task" {
  count  = local.ecs ? 1 : 0
  name   = "trailhound-run"
  role   = aws_iam_role.worker_task[0].id
  policy = data.aws_iam_policy_document.run.json
}

resource "aws_iam_role" "backfill_task" {
  count              = local.ecs ? 1 : 0
  name               = "${var.name}-backfill"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
}

resource "aws_iam_role_policy" "backfill_task" {
  count  = local.ecs ? 1 : 0
  name   = "trailhound-backfill-enqueue"
  role   = aws_iam_role.backfill_task[0].id
  policy = data.aws_iam_policy_document.backfill.json
}

resource "aws_ecs_task_definition" "worker" {
  count                    = local.ecs ? 1 : 0
  family                   = "${var.name}-run"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = "1024"
  memory                   = "2048"
  execution_role_arn       = aws_iam_role.task_execution[0].arn
  task_role_arn            = aws_iam_role.worker_task[0].arn
  runtime_platform {
    cpu_architecture        = var.architecture == "arm64" ? "ARM64" : "X86_64"
    operating_system_family = "LINUX"
  }
  container_definitions = jsonencode([{
    name                   = "trailhound"
    image                  = var.image_uri
    essential              = true
    readonlyRootFilesystem = true
    command                = ["run", "--log-format", "json"]
    stopTimeout            = 40
    environment = [
      { name = "TRAILHOUND_QUEUE_URL", value = aws_sqs_queue.notifications.id },
      { name = "TRAILHOUND_TOPIC_ARN", value = aws_sns_topic.alerts.arn },
      { name = "TRAILHOUND_STATE", value = "dynamodb://${aws_dynamodb_table.state.name}" },
    ]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.tasks[0].name
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = "run"
      }
    }
  }])
}

resource "aws_ecs_task_definition" "backfill" {
  count                    = local.ecs ? 1 : 0
  family                   = "${var.name}-backfill"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = "512"
  memory                   = "1024"
  execution_role_arn       = aws_iam_role.task_execution[0].arn
  task_role_arn            = aws_iam_role.backfill_task[0].arn
  runtime_platform {
    cpu_architecture        = var.architecture == "arm64" ? "ARM64" : "X86_64"
    operating_system_family = "LINUX"
  }
  # Override --since/--until at `aws ecs run-task`; the objects go to the queue, so the worker
  # inspects them with the shared state.
  container_definitions = jsonencode([{
    name                   = "trailhound"
    image                  = var.image_uri
    essential              = true
    readonlyRootFilesystem = true
    command = ["backfill", "s3://${var.trail_bucket_name}/${var.trail_key_prefix}", "--since", "30d",
      "--enqueue", aws_sqs_queue.notifications.id, "--state", "dynamodb://${aws_dynamodb_table.state.name}", "--progress", "jsonl"]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.tasks[0].name
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = "backfill"
      }
    }
  }])
}

resource "aws_ecs_service" "worker" {
  count           = local.ecs ? 1 : 0
  name            = "${var.name}-run"
  cluster         = aws_ecs_cluster.this[0].id
  launch_type     = "FARGATE"
  desired_count   = var.desired_count
  task_definition = aws_ecs_task_definition.worker[0].arn
  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = false
  }
}

# ---- Alarms -------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  alarm_name          = "${var.name}-dead-letters"
  alarm_description   = "Notifications reached the dead-letter queue (poison bodies or repeated failures); inspect and redrive."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dead_letters.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
}

resource "aws_cloudwatch_metric_alarm" "lag" {
  alarm_name          = "${var.name}-lag"
  alarm_description   = "The oldest waiting notification is older than lag_alarm_seconds; the worker is behind or down."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.notifications.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  threshold           = var.lag_alarm_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
}
