#!/bin/sh
# mufld's worker job (docs/cluster.md)
exec '/opt/mufl/mufl-worker' '--data-dir' '/shared/mufl' '--power-profile' 'V100'
