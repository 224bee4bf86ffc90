"""The EMS: Meeting Center, cluster manager, admin API and store."""
