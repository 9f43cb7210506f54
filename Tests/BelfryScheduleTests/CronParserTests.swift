@testable import BelfrySchedule
import Testing

@Suite("Cron parser")
struct CronParserTests {
    @Test(
        "accepts every form of SPEC §1.1",
        arguments: [
            "* * * * *", "*/15 * * * *", "0 9 * * 1-5", "0 9 * * MON-FRI", "0 9 * * mon-fri",
            "30 2 * * *", "0 0 L * *", "0 0 * * 5L", "0 0 * * FRIL", "0 0 * * MON#1", "0 0 * * 1#5",
            "0 0 ? * MON", "0 0 ? JAN MON", "0 0 1 JAN,jul *", "0 0 1 1-12/3 *", "5/10 * * * *",
            "0 12 * * 0", "0 12 * * 7", "0-30/10 8-18 * * *", "*/5 9-17 * * 1-5", "0 0 1,15,L * *",
            "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly", "@minutely",
            "*/10 * * * * *", "0 0 0 * * *", "0\t0\t*\t*\t*", "  0 0 * * *  ", "0 0 29 2 *", "0 0 31 * *",
        ])
    func accepts(expression: String) throws {
        _ = try CronExpression(parsing: expression)
    }

    @Test(
        "rejects bad input naming the field, the text and the problem",
        arguments: [
            ("60 * * * *", CronError.Field.minute, "60", "out of range"),
            ("* 24 * * *", .hour, "24", "out of range"),
            ("* * 0 * *", .dayOfMonth, "0", "out of range"),
            ("* * 32 * *", .dayOfMonth, "32", "out of range"),
            ("* * * 13 *", .month, "13", "out of range"),
            ("* * * * 8", .dayOfWeek, "8", "out of range"),
            ("60 * * * * *", .second, "60", "out of range"),
            ("5-1 * * * *", .minute, "5-1", "reversed range"),
            ("*/0 * * * *", .minute, "*/0", "step 0"),
            ("1,,2 * * * *", .minute, "1,,2", "empty item"),
            ("1, * * * *", .minute, "1,", "empty item"),
            ("* * * FOO *", .month, "FOO", "not a known name"),
            ("* * * * FRY", .dayOfWeek, "FRY", "not a known name"),
            ("5x * * * *", .minute, "5X", "not a number"),
            ("* ? * * *", .hour, "?", "only allowed in the day-of-month and day-of-week"),
            ("0 0 * * MON#6", .dayOfWeek, "MON#6", "k in n#k must be 1-5"),
            ("0 0 * * MON#0", .dayOfWeek, "MON#0", "k in n#k must be 1-5"),
            ("1-2-3 * * * *", .minute, "2-3", "not a number"),
            ("*/2/3 * * * *", .minute, "*/2/3", "more than one"),
            ("-5 * * * *", .minute, "-5", "not a number"),
            ("*/x * * * *", .minute, "*/x", "not a whole number"),
        ])
    func rejectsField(expression: String, field: CronError.Field, text: String, problem: String) {
        #expect {
            _ = try CronExpression(parsing: expression)
        } throws: { error in
            guard let error = error as? CronError else { return false }
            return error.field == field && error.text.uppercased() == text.uppercased()
                && error.problem.contains(problem) && error.description.contains(field.allowed)
        }
    }

    @Test(
        "rejects whole-expression problems",
        arguments: [
            ("* * *", "expected 5 fields"),
            ("* * * * * * *", "found 7"),
            ("", "found 0"),
            ("@reboot", "@reboot is not supported"),
            ("@fortnightly", "unknown macro"),
            ("0 0 30 2 *", "never fires"),
            ("0 0 31 4,6,9,11 *", "never fires"),
            ("0 0 31 2 ?", "never fires"),
        ])
    func rejectsExpression(expression: String, problem: String) {
        #expect {
            _ = try CronExpression(parsing: expression)
        } throws: { error in
            (error as? CronError)?.problem.contains(problem) == true
        }
    }

    @Test("error columns point into the expression")
    func columns() {
        for (expression, column) in [("0 0 * * FRY", 9), ("  61 * * * *", 3), ("0 1,,2 * * *", 3), ("0 0 * JAN,FOO *", 11)] {
            do {
                _ = try CronExpression(parsing: expression)
                Issue.record("\(expression) was accepted")
            } catch {
                #expect(error.column == column, "\(expression): \(error)")
            }
        }
    }

    @Test("macros equal their expansions")
    func macros() throws {
        let after = utc("2026-05-17T13:14:15Z")
        for (macro, expansion) in CronExpression.macros {
            let a = try CronSchedule(parsing: macro, zone: zone("UTC"))
            let b = try CronSchedule(parsing: expansion, zone: zone("UTC"))
            #expect(Array(a.slots(after: after).prefix(5)) == Array(b.slots(after: after).prefix(5)), "\(macro)")
        }
    }

    @Test("0 and 7 are both Sunday; names equal numbers")
    func sundays() throws {
        let a = try CronExpression(parsing: "0 0 * * 0")
        let b = try CronExpression(parsing: "0 0 * * 7")
        let c = try CronExpression(parsing: "0 0 * * sun")
        #expect(a.weekdayPattern == b.weekdayPattern && b.weekdayPattern == c.weekdayPattern)
        #expect(try CronExpression(parsing: "0 0 * * 5-7").weekdayPattern == CronExpression(parsing: "0 0 * * 0,5,6").weekdayPattern)
    }
}
