#!/bin/sh
echo "hello from the fixture app"
