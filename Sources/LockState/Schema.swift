import GRDB

/// The database's versioned migrations. Append new ones; never edit a released one.
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "keyGeneration") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("keyID", .text).notNull().unique()
                t.column("tag", .text).notNull()
                t.column("state", .text).notNull()
                    .check(sql: "state IN ('pending', 'active', 'retired', 'destroyed')")
                t.column("provider", .text).notNull()
                t.column("locations", .jsonText).notNull()
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "drive") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("address", .text).notNull().unique()
                t.column("identity", .text).notNull().unique()
                t.column("bus", .text).notNull()
                t.column("model", .text).notNull()
                t.column("serial", .text).notNull()
                t.column("generationID", .integer).references("keyGeneration", onDelete: .restrict)
                t.column("adoptedFrom", .text)
                t.column("failedAuthentications", .integer).notNull().defaults(to: 0)
                t.column("tryLimit", .integer)
                t.column("guardReason", .text)
                t.column("addedAt", .datetime).notNull()
            }
            try db.create(table: "checkValue") { t in
                t.column("driveID", .integer).notNull().references("drive", onDelete: .cascade)
                t.column("generationID", .integer).notNull().references("keyGeneration", onDelete: .restrict)
                t.column("authority", .text).notNull()
                t.column("value", .blob).notNull()
                t.primaryKey(["driveID", "generationID", "authority"])
            }
            try db.create(table: "keyProvider") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("kind", .text).notNull().check(sql: "kind IN ('kmip', 'local')")
                t.column("name", .text).notNull().unique()
                t.column("threshold", .integer)
                t.column("defaultTag", .text)
            }
            try db.create(table: "keyServer") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("providerID", .integer).notNull().references("keyProvider", onDelete: .cascade)
                t.column("name", .text).notNull().unique()
                t.column("addresses", .jsonText).notNull()
                t.column("position", .integer).notNull()
                t.column("certificatePath", .text).notNull()
                t.column("privateKeyPath", .text).notNull()
                t.column("caPath", .text).notNull()
                t.column("verifyServerName", .boolean).notNull().defaults(to: true)
            }
            try db.create(table: "certificate") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("role", .text).notNull().check(sql: "role IN ('client', 'ca')")
                t.column("path", .text).notNull()
                t.column("fingerprint", .text).notNull()
                t.column("notAfter", .datetime)
            }
            try db.create(table: "boot") { t in
                t.primaryKey("bootID", .text)
                t.column("startedAt", .datetime).notNull()
                t.column("outcome", .text).notNull()
                    .check(sql: "outcome IN ('started', 'unlocked', 'partial', 'failed', 'held')")
                t.column("detail", .text).notNull()
            }
            try db.create(table: "journal") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("kind", .text).notNull().check(sql: "kind IN ('setup', 'rekey', 'rdl-enable', 'rdl-rotate')")
                t.column("fromGenerationID", .integer).references("keyGeneration", onDelete: .restrict)
                t.column("toGenerationID", .integer).notNull().references("keyGeneration", onDelete: .restrict)
                t.column("state", .text).notNull().check(sql: "state IN ('pending', 'done', 'abandoned')")
                t.column("startedAt", .datetime).notNull()
                t.column("finishedAt", .datetime)
            }
            try db.create(table: "journalDrive") { t in
                t.column("journalID", .integer).notNull().references("journal", onDelete: .cascade)
                t.column("driveID", .integer).notNull().references("drive", onDelete: .cascade)
                t.column("step", .text).notNull()
                    .check(sql: "step IN ('pending', 'owned', 'activated', 'sidSet', 'admin1Set', 'pinsSet', 'proven')")
                t.column("updatedAt", .datetime).notNull()
                t.primaryKey(["journalID", "driveID"])
            }
            try db.create(table: "fault") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull()
                t.column("severity", .text).notNull()
                t.column("object", .text).notNull()
                t.column("raisedAt", .datetime).notNull()
                t.column("clearedAt", .datetime)
                t.column("action", .text).notNull()
                t.column("detail", .text).notNull()
            }
            try db.create(table: "audit") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("at", .datetime).notNull()
                t.column("actor", .text).notNull()
                t.column("action", .text).notNull()
                t.column("target", .text).notNull()
                t.column("outcome", .text).notNull()
            }
        }
        // Rapid Data Locking: a generation whose PINs also need the security token names it; the
        // settings live in a one-row table.
        migrator.registerMigration("v2 rdl") { db in
            try db.alter(table: "keyGeneration") { t in
                t.add(column: "tokenID", .text)
            }
            try db.create(table: "rdl") { t in
                t.primaryKey("id", .integer).check { $0 == 1 }
                t.column("server", .text).notNull()
                t.column("lockOnLoss", .boolean).notNull()
                t.column("tokenLocations", .jsonText).notNull()
                t.column("requestedAt", .datetime).notNull()
                t.column("lastTestAt", .datetime)
                t.column("lastTestResult", .text)
            }
        }
        // The token as k-of-n Shamir shares, one per key server (NULL: a full copy on each).
        migrator.registerMigration("v3 rdl token threshold") { db in
            try db.alter(table: "rdl") { t in
                t.add(column: "tokenThreshold", .integer)
            }
        }
        // How long each boot unlock took, for the metrics.
        migrator.registerMigration("v4 boot duration") { db in
            try db.alter(table: "boot") { t in
                t.add(column: "durationSeconds", .double)
            }
        }
        // Whether a drive's PIN change of its current step was sent (its outcome unknown until
        // the next step is recorded), so that a rerun first tries the PIN it may have set.
        migrator.registerMigration("v5 pin change sent") { db in
            try db.alter(table: "journalDrive") { t in
                t.add(column: "pinChangeSent", .boolean).notNull().defaults(to: false)
            }
        }
        // Whether a drive was locked on purpose, so sedlockd tells it from one that relocked.
        migrator.registerMigration("v6 locked on purpose") { db in
            try db.alter(table: "drive") { t in
                t.add(column: "lockedOnPurpose", .boolean).notNull().defaults(to: false)
            }
        }
        // A rekey recovered on a new host marks each drive's place as unknown: the step's CHECK
        // takes the new value (SQLite changes a CHECK only by rebuilding the table).
        migrator.registerMigration("v7 unknown rekey step") { db in
            try db.create(table: "journalDriveNew") { t in
                t.column("journalID", .integer).notNull().references("journal", onDelete: .cascade)
                t.column("driveID", .integer).notNull().references("drive", onDelete: .cascade)
                t.column("step", .text).notNull()
                    .check(sql: "step IN ('unknown', 'pending', 'owned', 'activated', 'sidSet', 'admin1Set', 'pinsSet', 'proven')")
                t.column("updatedAt", .datetime).notNull()
                t.column("pinChangeSent", .boolean).notNull().defaults(to: false)
                t.primaryKey(["journalID", "driveID"])
            }
            try db.execute(sql: """
                INSERT INTO journalDriveNew (journalID, driveID, step, updatedAt, pinChangeSent)
                SELECT journalID, driveID, step, updatedAt, pinChangeSent FROM journalDrive
                """)
            try db.drop(table: "journalDrive")
            try db.rename(table: "journalDriveNew", to: "journalDrive")
        }
        // The check values of a drive taken out of the array with its PINs kept, by its identity:
        // `array add` takes it back with them, verified, never guessed.
        migrator.registerMigration("v8 departed drives") { db in
            try db.create(table: "departedCheckValue") { t in
                t.column("identity", .text).notNull()
                t.column("generationID", .integer).notNull().references("keyGeneration", onDelete: .cascade)
                t.column("authority", .text).notNull()
                t.column("value", .blob).notNull()
                t.column("removedAt", .datetime).notNull()
                t.primaryKey(["identity", "generationID", "authority"])
            }
        }
        // What was last put on every key server as the recovery record (nothing secret): a
        // record a crash kept from going out, or one a server missed, is published by the next
        // command that compares.
        migrator.registerMigration("v9 published recovery record") { db in
            try db.alter(table: "keyProvider") { t in t.add(column: "publishedRecord", .text) }
        }
        return migrator
    }
}
