variable "name" {
  description = "Name prefix for every resource."
  type        = string
  default     = "trailhound"
}

variable "trail_bucket_name" {
  description = "The bucket the trail delivers to. For an organization trail in a log-archive account, grant the worker role (output worker_role_arn) s3:GetObject in that bucket's policy."
  type        = string
}

variable "trail_key_prefix" {
  description = "The trail's S3 key prefix with its trailing slash (empty when the trail has none)."
  type        = string
  default     = ""
  validation {
    condition     = var.trail_key_prefix == "" || endswith(var.trail_key_prefix, "/")
    error_message = "trail_key_prefix ends with a slash, or is empty."
  }
}

variable "organization_id" {
  description = "For an organization trail, the organization id (o-...); reads are then limited to AWSLogs/o-.../."
  type        = string
  default     = ""
  validation {
    condition     = var.organization_id == "" || can(regex("^o-[a-z0-9]{10,32}$", var.organization_id))
    error_message = "organization_id looks like o-abcdefghij."
  }
}

variable "trail_kms_key_arn" {
  description = "The KMS key the trail encrypts its log files with (SSE-KMS), if any."
  type        = string
  default     = ""
}

variable "notification_source" {
  description = "How new log objects reach the queue: \"sns\" (the trail's topic), \"eventbridge\" (S3 Object Created events; turn on EventBridge for the bucket) or \"s3\" (a bucket notification; this module then owns the bucket's whole notification configuration)."
  type        = string
  default     = "sns"
  validation {
    condition     = contains(["s3", "sns", "eventbridge"], var.notification_source)
    error_message = "notification_source is s3, sns or eventbridge."
  }
}

variable "trail_topic_arn" {
  description = "The trail's SNS topic (notification_source = \"sns\")."
  type        = string
  default     = ""
}

variable "compute" {
  description = "\"lambda\" (an SQS-triggered function) or \"ecs\" (a Fargate service, plus a backfill task definition)."
  type        = string
  default     = "lambda"
  validation {
    condition     = contains(["lambda", "ecs"], var.compute)
    error_message = "compute is lambda or ecs."
  }
}

variable "lambda_zip" {
  description = "Path to the zip from `cargo lambda build --release --output-format zip` (compute = \"lambda\"); empty to use image_uri."
  type        = string
  default     = ""
}

variable "image_uri" {
  description = "The container image (deploy/Dockerfile) in ECR: required for ECS, or for a Lambda image when lambda_zip is empty."
  type        = string
  default     = ""
}

variable "architecture" {
  description = "arm64 or x86_64."
  type        = string
  default     = "arm64"
}

variable "memory_size" {
  description = "Lambda memory (MB); CPU grows with it, and decoding is CPU-bound."
  type        = number
  default     = 1024
}

variable "function_timeout" {
  description = "Lambda timeout (s); the queue's visibility timeout is six times this."
  type        = number
  default     = 300
  validation {
    condition     = var.function_timeout >= 30 && var.function_timeout <= 900
    error_message = "function_timeout is 30 to 900 seconds."
  }
}

variable "batch_size" {
  description = "Messages per invocation."
  type        = number
  default     = 10
}

variable "publish_severity" {
  description = "Publish findings at or above this severity."
  type        = string
  default     = "medium"
}

variable "subnet_ids" {
  description = "Private subnets for the ECS service."
  type        = list(string)
  default     = []
}

variable "security_group_ids" {
  description = "Security groups for the ECS service (egress to AWS APIs only)."
  type        = list(string)
  default     = []
}

variable "desired_count" {
  description = "ECS worker tasks."
  type        = number
  default     = 1
}

variable "max_receive_count" {
  description = "Receives before a message moves to the dead-letter queue (every crash costs each in-flight message one)."
  type        = number
  default     = 10
  validation {
    condition     = var.max_receive_count >= 10
    error_message = "max_receive_count is at least 10."
  }
}

variable "lag_alarm_seconds" {
  description = "Alarm when the oldest waiting notification is older than this."
  type        = number
  default     = 900
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention."
  type        = number
  default     = 90
}
