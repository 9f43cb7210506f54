/// `GET /api/v1/openapi.yaml`: the API described in OpenAPI 3.1. A test checks that every route
/// the router has is in it, and that the answers match their schemas.
enum OpenAPIDocument {
    static let yaml = """
        openapi: 3.1.0
        info:
          title: Belfry
          version: "1"
          description: The HTTP API of the Belfry job scheduler's daemon. The JSON fields are those of the CLI's --json.
        servers:
          - url: /api/v1
        security:
          - bearer: []
        components:
          securitySchemes:
            bearer:
              type: http
              scheme: bearer
          parameters:
            task: { name: task, in: path, required: true, schema: { type: string }, description: "ENV.TASK" }
            trigger: { name: trigger, in: path, required: true, schema: { type: string } }
            id: { name: id, in: path, required: true, schema: { type: integer, minimum: 1 } }
          responses:
            Error:
              description: An error, said in words.
              content:
                application/json:
                  schema: { $ref: "#/components/schemas/Error" }
          schemas:
            Error:
              type: object
              required: [error, detail]
              properties:
                error: { type: string, enum: [bad_request, unauthorized, forbidden, not_found, conflict, too_large, unavailable, internal] }
                detail: { type: string }
            Instant: { type: string, description: "UTC, RFC 3339" }
            LastRun:
              type: [object, "null"]
              required: [id, state, slot]
              properties:
                id: { type: integer }
                state: { type: string }
                slot: { type: [string, "null"] }
            Trigger:
              type: object
              required: [task, trigger, kind, schedule, resolved_schedule, timezone, active, next_slot, last_run, owner, updated_by, updated_at]
              properties:
                task: { type: string }
                trigger: { type: string }
                kind: { type: string, enum: [cron, every] }
                schedule: { type: string }
                resolved_schedule: { type: string }
                timezone: { type: string }
                active: { type: boolean }
                next_slot: { type: [string, "null"] }
                last_run: { $ref: "#/components/schemas/LastRun" }
                owner: { type: [string, "null"] }
                updated_by: { type: [string, "null"] }
                updated_at: { type: string }
            Slot:
              type: object
              required: [slot, local, abbreviation, marker, skipped]
              properties:
                slot: { type: string }
                local: { type: string }
                abbreviation: { type: string }
                marker: { type: [string, "null"], enum: [after-dst-gap, repeated-first, repeated-second, null] }
                skipped: { type: [string, "null"], description: "The first matching wall-clock time (YYYY-MM-DDTHH:MM) a DST gap took away just before this slot." }
            TriggerDetail:
              allOf:
                - $ref: "#/components/schemas/Trigger"
                - type: object
                  required: [upcoming]
                  properties:
                    upcoming: { type: array, items: { $ref: "#/components/schemas/Slot" } }
            Run:
              type: object
              required: [id, task, trigger, slot, origin, state, reason, attempts, exit_code, queued_at, started_at, finished_at, command_used, node]
              properties:
                id: { type: integer }
                task: { type: string }
                trigger: { type: [string, "null"] }
                slot: { type: [string, "null"] }
                origin: { type: string, enum: [scheduled, manual, catch-up, api] }
                state: { type: string, enum: [queued, running, succeeded, failed, timed_out, cancelled, skipped, missed] }
                reason: { type: [string, "null"] }
                attempts: { type: integer }
                exit_code: { type: [integer, "null"] }
                queued_at: { type: string }
                started_at: { type: [string, "null"] }
                finished_at: { type: [string, "null"] }
                command_used: { type: [string, "null"] }
                node: { type: [string, "null"] }
            Attempt:
              type: object
              required: [number, started_at, finished_at, pid, exit_code, signal, timed_out, output_tail, log_path]
              properties:
                number: { type: integer }
                started_at: { type: string }
                finished_at: { type: [string, "null"] }
                pid: { type: [integer, "null"] }
                exit_code: { type: [integer, "null"] }
                signal: { type: [integer, "null"] }
                timed_out: { type: boolean }
                output_tail: { type: [string, "null"] }
                log_path: { type: [string, "null"] }
            Step:
              type: object
              required: [name, exit_code, finished_at]
              properties:
                name: { type: string }
                exit_code: { type: integer }
                finished_at: { type: string }
            RunDetail:
              allOf:
                - $ref: "#/components/schemas/Run"
                - type: object
                  required: [attempt_list, steps]
                  properties:
                    attempt_list: { type: array, items: { $ref: "#/components/schemas/Attempt" } }
                    steps: { type: array, items: { $ref: "#/components/schemas/Step" } }
            Statistics:
              type: object
              required: [task, runs, success_rate, mean_attempts, retry_rate, p50_duration, p95_duration]
              properties:
                task: { type: string }
                runs: { type: integer }
                success_rate: { type: number }
                mean_attempts: { type: number }
                retry_rate: { type: number }
                p50_duration: { type: [number, "null"] }
                p95_duration: { type: [number, "null"] }
        paths:
          /triggers:
            get:
              summary: The triggers, as belfry trigger list --json.
              parameters:
                - { name: task, in: query, schema: { type: string } }
                - { name: limit, in: query, schema: { type: integer, minimum: 1, maximum: 1000000 } }
              responses:
                "200": { description: The triggers., content: { application/json: { schema: { type: array, items: { $ref: "#/components/schemas/Trigger" } } } } }
                "400": { $ref: "#/components/responses/Error" }
                "401": { $ref: "#/components/responses/Error" }
          /triggers/{task}/{trigger}:
            parameters: [{ $ref: "#/components/parameters/task" }, { $ref: "#/components/parameters/trigger" }]
            get:
              summary: One trigger, with its next 10 slots.
              responses:
                "200": { description: The trigger., content: { application/json: { schema: { $ref: "#/components/schemas/TriggerDetail" } } } }
                "401": { $ref: "#/components/responses/Error" }
                "404": { $ref: "#/components/responses/Error" }
          /triggers/{task}/{trigger}/activate:
            parameters: [{ $ref: "#/components/parameters/task" }, { $ref: "#/components/parameters/trigger" }]
            post:
              summary: Activate (admin); updated_by is the token's name.
              responses:
                "200": { description: The trigger as it is now., content: { application/json: { schema: { $ref: "#/components/schemas/Trigger" } } } }
                "401": { $ref: "#/components/responses/Error" }
                "403": { $ref: "#/components/responses/Error" }
                "404": { $ref: "#/components/responses/Error" }
                "413": { $ref: "#/components/responses/Error" }
          /triggers/{task}/{trigger}/deactivate:
            parameters: [{ $ref: "#/components/parameters/task" }, { $ref: "#/components/parameters/trigger" }]
            post:
              summary: Deactivate (admin).
              responses:
                "200": { description: The trigger as it is now., content: { application/json: { schema: { $ref: "#/components/schemas/Trigger" } } } }
                "401": { $ref: "#/components/responses/Error" }
                "403": { $ref: "#/components/responses/Error" }
                "404": { $ref: "#/components/responses/Error" }
                "413": { $ref: "#/components/responses/Error" }
          /tasks/{task}/runs:
            parameters: [{ $ref: "#/components/parameters/task" }]
            post:
              summary: Run the task now (admin); origin api.
              requestBody:
                required: false
                content:
                  application/json:
                    schema:
                      type: object
                      additionalProperties: false
                      properties:
                        inputs: { type: object, additionalProperties: { type: string } }
              responses:
                "202":
                  description: The run is started.
                  content: { application/json: { schema: { type: object, required: [id], properties: { id: { type: integer } } } } }
                  links:
                    run: { operationId: getRun, parameters: { id: "$response.body#/id" } }
                    log: { operationId: getRunLog, parameters: { id: "$response.body#/id" } }
                    cancel: { operationId: cancelRun, parameters: { id: "$response.body#/id" } }
                "400": { $ref: "#/components/responses/Error" }
                "401": { $ref: "#/components/responses/Error" }
                "403": { $ref: "#/components/responses/Error" }
                "404": { $ref: "#/components/responses/Error" }
                "413": { $ref: "#/components/responses/Error" }
                "503": { $ref: "#/components/responses/Error" }
          /runs:
            get:
              summary: Runs, newest first, as belfry runs --json.
              parameters:
                - { name: task, in: query, schema: { type: string } }
                - { name: trigger, in: query, schema: { type: string } }
                - { name: state, in: query, schema: { type: string, enum: [queued, running, succeeded, failed, timed_out, cancelled, skipped, missed] } }
                - { name: since, in: query, schema: { type: string }, description: "RFC 3339, or a date-time in UTC" }
                - { name: before, in: query, schema: { type: integer, minimum: 1 }, description: "only runs older than this id" }
                - { name: limit, in: query, schema: { type: integer, minimum: 1, maximum: 10000, default: 50 } }
              responses:
                "200": { description: The runs., content: { application/json: { schema: { type: array, items: { $ref: "#/components/schemas/Run" } } } } }
                "400": { $ref: "#/components/responses/Error" }
                "401": { $ref: "#/components/responses/Error" }
          /runs/{id}:
            parameters: [{ $ref: "#/components/parameters/id" }]
            get:
              operationId: getRun
              summary: A run with its attempts and steps.
              responses:
                "200": { description: The run., content: { application/json: { schema: { $ref: "#/components/schemas/RunDetail" } } } }
                "400": { $ref: "#/components/responses/Error" }
                "401": { $ref: "#/components/responses/Error" }
                "404": { $ref: "#/components/responses/Error" }
          /runs/{id}/log:
            parameters: [{ $ref: "#/components/parameters/id" }]
            get:
              operationId: getRunLog
              summary: An attempt's log as text; with follow=1, server-sent events until the run ends.
              parameters:
                - { name: attempt, in: query, schema: { type: integer, minimum: 1, maximum: 10000 } }
                - { name: follow, in: query, schema: { type: integer, enum: [0, 1] } }
              responses:
                "200":
                  description: The log.
                  content:
                    text/plain: { schema: { type: string } }
                    text/event-stream:
                      schema:
                        description: "With follow=1, one event per line of the log (`message`), then `end` with the run's state."
                        type: object
                        required: [data]
                        properties:
                          event: { type: string, enum: [message, end] }
                          data: { type: string }
                "400": { $ref: "#/components/responses/Error" }
                "401": { $ref: "#/components/responses/Error" }
                "404": { $ref: "#/components/responses/Error" }
          /runs/{id}/cancel:
            parameters: [{ $ref: "#/components/parameters/id" }]
            post:
              operationId: cancelRun
              summary: Cancel a queued or running run (admin).
              responses:
                "202":
                  description: The run is being cancelled.
                  content: { application/json: { schema: { type: object, required: [id, state], properties: { id: { type: integer }, state: { type: string } } } } }
                "400": { $ref: "#/components/responses/Error" }
                "401": { $ref: "#/components/responses/Error" }
                "403": { $ref: "#/components/responses/Error" }
                "404": { $ref: "#/components/responses/Error" }
                "409": { $ref: "#/components/responses/Error" }
                "413": { $ref: "#/components/responses/Error" }
          /stats:
            get:
              summary: Per task figures, as belfry stats --json.
              parameters:
                - { name: task, in: query, schema: { type: string } }
                - { name: since, in: query, schema: { type: string } }
              responses:
                "200": { description: The figures., content: { application/json: { schema: { type: array, items: { $ref: "#/components/schemas/Statistics" } } } } }
                "400": { $ref: "#/components/responses/Error" }
                "401": { $ref: "#/components/responses/Error" }
          /next:
            get:
              summary: Slots of a cron expression or a fixed rate, as belfry next --json.
              parameters:
                - { name: cron, in: query, description: "A cron expression or a predefined name (daily); give cron or every.", schema: { type: string }, example: "30 2 * * *" }
                - { name: every, in: query, description: "A fixed rate; give cron or every.", schema: { type: string }, example: 90m }
                - { name: timezone, in: query, description: An IANA time zone., schema: { type: string, default: UTC }, example: America/New_York }
                - { name: after, in: query, description: "Slots strictly after this instant (RFC 3339, local date-time in timezone, or @EPOCH). Default: now.", schema: { type: string }, example: "2026-03-07T00:00:00Z" }
                - { name: start_time, in: query, description: "Where a fixed rate's slots are anchored (RFC 3339).", schema: { type: string }, example: "2026-01-01T00:00:00Z" }
                - { name: hash_key, in: query, description: "The key that places H (ENV.TASK TRIGGER), as belfry next --hash-key.", schema: { type: string } }
                - { name: count, in: query, schema: { type: integer, minimum: 1, maximum: 1000, default: 10 } }
              responses:
                "200": { description: The slots., content: { application/json: { schema: { type: array, items: { $ref: "#/components/schemas/Slot" } } } } }
                "400": { $ref: "#/components/responses/Error" }
                "401": { $ref: "#/components/responses/Error" }
          /openapi.yaml:
            get:
              summary: This document.
              security: []
              responses:
                "200": { description: OpenAPI 3.1., content: { application/yaml: { schema: { type: string } } } }

        """
}
