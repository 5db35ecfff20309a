"""The language spoken between mroute processes. Imports nothing of ours."""
