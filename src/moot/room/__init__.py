"""The room server: hosts meetings, reports to the EMS, obeys its commands."""
