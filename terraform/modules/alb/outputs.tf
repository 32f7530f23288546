output "bento_dns_name" {
  description = "DNS name of the prediction API load balancer (point your host name at it)."
  value       = aws_lb.bento.dns_name
}

output "bento_zone_id" {
  description = "Hosted zone of the prediction API load balancer (for a Route 53 alias)."
  value       = aws_lb.bento.zone_id
}

output "bento_target_group_arn" {
  description = "Target group of the BentoML tasks."
  value       = aws_lb_target_group.bento.arn
}

output "bento_security_group_id" {
  description = "Security group of the prediction API load balancer."
  value       = aws_security_group.bento.id
}

output "bento_alb_arn_suffix" {
  description = "ARN suffix of the prediction API load balancer (for request-count autoscaling)."
  value       = aws_lb.bento.arn_suffix
}

output "bento_target_group_arn_suffix" {
  description = "ARN suffix of the BentoML target group (for request-count autoscaling)."
  value       = aws_lb_target_group.bento.arn_suffix
}

output "dagster_dns_name" {
  description = "DNS name of the internal Dagster UI load balancer."
  value       = aws_lb.dagster.dns_name
}

output "dagster_target_group_arn" {
  description = "Target group of the Dagster webserver."
  value       = aws_lb_target_group.dagster.arn
}

output "dagster_security_group_id" {
  description = "Security group of the Dagster UI load balancer."
  value       = aws_security_group.dagster.id
}
