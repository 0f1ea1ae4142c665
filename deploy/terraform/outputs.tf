output "queue_url" {
  value = aws_sqs_queue.notifications.id
}

output "queue_arn" {
  value = aws_sqs_queue.notifications.arn
}

output "dead_letter_queue_url" {
  value = aws_sqs_queue.dead_letters.id
}

output "alert_topic_arn" {
  value = aws_sns_topic.alerts.arn
}

output "state_location" {
  value = "dynamodb://${aws_dynamodb_table.state.name}"
}

output "worker_role_arn" {
  description = "The role to grant s3:GetObject in the trail bucket's policy when the bucket is in another account."
  value       = local.lambda ? aws_iam_role.function[0].arn : aws_iam_role.worker_task[0].arn
}
