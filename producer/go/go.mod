module rtm.invalid/rtm

go 1.19
