package audit

// VerifyPage is verifyPage, for the tests of package audit_test.
const VerifyPage = verifyPage
