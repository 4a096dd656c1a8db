package broker

// JoinGroupV2 encodes a JoinGroup v2 request as kafka-go's consumer groups send it, for the tests of package
// broker_test.
var JoinGroupV2 = joinGroupV2
