module rtm.invalid/go-demo

go 1.19

require rtm.invalid/rtm v0.0.0

replace rtm.invalid/rtm => ../../producer/go
